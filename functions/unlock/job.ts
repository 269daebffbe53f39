// The unlock sequence (crypto.md §6): log in, key fragment, then each archive decrypted straight into the engine.
import type { Env } from '../../shared/contract/function'
import { isHttpError } from '../../shared/contract/http-error'
import { aesKey, DecryptStream } from '../../shared/crypto/blob'
import { isBlobError } from '../../shared/crypto/errors'
import { plainLengthFromTail } from '../../shared/crypto/last-block'
import { performLogin } from '../../shared/upstream/login'
import { getKeyFragment, withAuth } from '../../shared/upstream/resource-api'
import { EngineError, hasImage, loadImages } from './engine'
import { UpstreamTimeoutError } from '../../shared/upstream/node-request'
import { readUnlock, writeUnlock, type UnlockStatus } from '../../shared/contract/unlock-state'
import type { ArchiveFile } from '../../shared/contract/archives'

/** The signature of a set of archives: names, sizes, mtimes. */
export const signatureOf = (list: ArchiveFile[]) => JSON.stringify(list.map((a) => [a.name, a.size, Math.round(a.mtimeMs)]))

/** Why an engine call failed, in words: unreachable, refused TLS, or the engine's own message. */
export function engineMessage(e: unknown, archive: string, dockerHost: string): string {
  if (e instanceof EngineError) return `the Docker engine refused ${archive}: ${e.message}`
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'EACCES' && dockerHost.startsWith('unix://')) {
    return `the Docker engine at ${dockerHost} could not be reached (EACCES): the loader's user may not use the socket; in a container, add the socket's group (--group-add $(stat -c %g ${dockerHost.slice(7)}))`
  }
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES' || code === 'EHOSTUNREACH') {
    return `the Docker engine at ${dockerHost} could not be reached (${code})`
  }
  if (typeof code === 'string' && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(code)) {
    return `the Docker engine at ${dockerHost} failed the TLS handshake (${code}): check DOCKER_CERT_PATH and DOCKER_TLS_VERIFY`
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') return `the Docker engine at ${dockerHost} closed the connection (${code})`
  if (e instanceof UpstreamTimeoutError) return `the Docker engine at ${dockerHost} did not answer for ${archive}: ${e.message}`
  if (isBlobError(e)) return `${archive} does not decrypt with the key fragment: ${e.message}`
  return `loading ${archive} into the Docker engine failed (${code ?? (e as Error).name ?? 'error'})`
}

/** An archive file the loader cannot read (permissions, removed meanwhile, a failing disk), naming its code. */
const unreadable = (archive: string, e: unknown) =>
  `the archive ${archive} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).name ?? 'error'}): check UNLOCK_ARCHIVE and the file's permissions`

/** Runs the whole job, writing every phase to `env.state`; never throws. */
export async function runUnlock(env: Env, email: string, password: string, started: UnlockStatus): Promise<UnlockStatus> {
  let s = started
  // Every write goes through one chain, so a late progress write never lands after the final state.
  let chain: Promise<unknown> = Promise.resolve()
  const save = (patch: Partial<UnlockStatus>): Promise<UnlockStatus> => {
    // Once ready or error, only the job's own final write may follow: a late event never moves it back.
    if ((s.state === 'ready' || s.state === 'error') && patch.state !== s.state) return Promise.resolve(s)
    s = { ...s, ...patch }
    const snapshot = s
    const p = chain.then(() => writeUnlock(env.state, snapshot))
    chain = p.catch((e) => env.log.error({ err: String(e) }, 'cannot write the unlock state'))
    return p
  }
  const fail = async (error: string) => {
    env.log.warn({ error }, 'unlock failed')
    return save({ state: 'error', error })
  }
  try {
    const auth = await performLogin(env, email, password)
    await save({ state: 'fetching_key' })
    const fragment = await withAuth(env, 'the key fragment', (token) => getKeyFragment(env, token), auth)
    const key = aesKey(fragment)

    let archives: ArchiveFile[]
    try {
      archives = await env.archives.list()
    } catch (e) {
      return fail((e as Error).message)
    }
    const total = archives.reduce((n, a) => n + a.size, 0)
    await save({ archives: signatureOf(archives), progress: { bytesDone: 0, bytesTotal: total } })

    // A wrong key is reported as such before the engine sees a byte.
    const plainBytes: number[] = []
    for (const a of archives) {
      try {
        plainBytes.push(plainLengthFromTail(key, a.size >= 32 ? await env.archives.tail(a, 32) : Buffer.alloc(32), a.size))
      } catch (e) {
        if (isBlobError(e)) return fail(`${a.name} does not decrypt with the key fragment (wrong key or corrupt archive: ${e.message})`)
        return fail(unreadable(a.name, e))
      }
    }

    let tls: Awaited<ReturnType<Env['dockerTls']>>
    try {
      tls = await env.dockerTls()
    } catch (e) {
      return fail((e as Error).message)
    }
    let done = 0
    let lastWrite = 0
    const images: string[] = []
    for (const [i, a] of archives.entries()) {
      await save({ state: 'decrypting' })
      const source = env.archives.open(a)
      // Progress counts encrypted bytes read; a listener, not an extra stream hop.
      source.on('data', (chunk: Buffer) => {
        done += chunk.length
        const now = Date.now()
        if (now - lastWrite >= 1000) {
          lastWrite = now
          void save({ progress: { bytesDone: done, bytesTotal: total } })
        }
      })
      const decrypt = new DecryptStream(key)
      // The archive's own read failure is told apart from the engine's (both end the request).
      let readError: unknown
      source.once('error', (e) => { readError = e; decrypt.destroy(e) })
      const body = source.pipe(decrypt)
      // The engine may answer before the file stream reports its end (the last cipher block of a
      // tar is all padding), so `loading` is written only while this archive is still unanswered.
      let answered = false
      source.once('end', () => { if (!answered) void save({ state: 'loading', progress: { bytesDone: done, bytesTotal: total } }) })
      try {
        images.push(...await loadImages(env.config.DOCKER_HOST, body, plainBytes[i], env.config.DOCKER_TIMEOUT_MS, tls))
      } catch (e) {
        return fail(readError ? unreadable(a.name, readError) : engineMessage(e, a.name, env.config.DOCKER_HOST))
      } finally {
        answered = true
        // Answered: the archive file closes, also when the engine answered before its end.
        source.destroy()
      }
    }
    env.log.info({ images }, 'unlock ready')
    return save({ state: 'ready', images, error: null, progress: { bytesDone: total, bytesTotal: total } })
  } catch (e) {
    return fail(isHttpError(e) ? e.message : `unexpected failure (${(e as Error).name})`)
  }
}

/** Longest wait for the engine's answer when checking that a `ready` state still holds. */
const CHECK_TIMEOUT_MS = 10_000

/**
 * True when a `ready` state still matches the archives on disk and the engine still has every
 * image it loaded (one may have been removed, or the engine's storage wiped): otherwise the
 * unlock runs again. An engine that cannot be asked counts as changed, so the new run reports why.
 */
export async function stillReady(env: Env): Promise<boolean> {
  const s = await readUnlock(env.state)
  if (s.state !== 'ready') return false
  try {
    if (signatureOf(await env.archives.list()) !== s.archives) return false
    const timeout = Math.min(env.config.DOCKER_TIMEOUT_MS, CHECK_TIMEOUT_MS)
    // The engine is asked the way the load reached it: over TLS when DOCKER_TLS_VERIFY says so.
    const tls = await env.dockerTls()
    for (const image of s.images) {
      if (!(await hasImage(env.config.DOCKER_HOST, image, timeout, tls))) {
        env.log.info({ image }, 'an unlocked image is gone from the engine: unlocking again')
        return false
      }
    }
    return true
  } catch (e) {
    env.log.warn({ err: (e as Error).message }, 'cannot check the unlocked images: unlocking again')
    return false
  }
}
