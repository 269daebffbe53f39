// Gets the big part into the cache (crypto.md §5 step 2, §5b): resumable, verified, single flight.
import { chunkedKey } from './chunked-download'
import type { DownloadJob } from './download-job'
import { decrypts, hashPartial } from './partial-checks'
import { receive } from './receive'
import { createHash } from 'node:crypto'
import type { CacheRecord, HeldPart, PartialFile } from '../../shared/contract/cache'
import { bigPartUrl, cdnRequest, cdnStatusProblem } from '../../shared/upstream/cdn'
import type { Env } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import type { CdnSettings } from '../../shared/upstream/session'
import { upstreamProblem } from '../../shared/upstream/errors'
import type { Manifest } from '../../shared/crypto/manifest'
import { createGcPacer } from '../../shared/crypto/gc-pacer'
import { downloadStorageCode, isLocalFsError, localStorageErrorCode, localStorageProblem, markLocal, onLocalFile } from '../../shared/http/local-storage-error'

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)

/**
 * The small part a big part must belong to; `tail`, its last (up to) 32 bytes, lets a download that
 * nothing else verifies be checked for its padding before it is cached.
 */
export interface SmallPart { sha256: string; bytes: number; tail?: Buffer }

/**
 * `env.cache.acquire`, where a failure of the cache's own files (the open-file limit, an unreadable
 * volume) is the 507 of a local storage failure, not a bug (500).
 */
export async function acquireCached(env: Env, folder: string, filename: string): Promise<HeldPart | null> {
  try {
    return await env.cache.acquire(folder, filename)
  } catch (e) {
    if (!isLocalFsError(e)) throw e
    throw localStorageProblem(markLocal(e), `reading the cached big part of ${folder}/${filename}`, 'cache-not-writable')
  }
}

/** The single-flight key of the download-then-send download of a big part. */
export const bigPartKey = (folder: string, filename: string, smallSha: string) => `big:${folder}/${filename}:${smallSha}`

/**
 * Returns the cached big part matching the small part, held for the caller (release it when the
 * response ends), downloading it when needed. `getManifest` is called only for a download (a warm
 * load makes no extra call). The partial file and the single flight share one key: name and
 * SHA-256 of the small part.
 */
export async function ensureBigPart(env: Env, cdn: CdnSettings, folder: string, filename: string, small: SmallPart,
  getManifest: () => Promise<Manifest | null>): Promise<HeldPart> {
  const have = await acquireCached(env, folder, filename)
  if (have?.record.smallSha256 === small.sha256) {
    env.metrics.cacheLookup('hit')
    return have
  }
  have?.release()
  env.metrics.cacheLookup('miss')
  const shared = await env.inflight.run(bigPartKey(folder, filename, small.sha256), async () => {
    const again = await acquireCached(env, folder, filename)
    if (again?.record.smallSha256 === small.sha256) return again
    again?.release()
    // A verified download (crypto.md §5c) of the same part may be running: let it finish rather
    // than write the same partial file under another single flight.
    const verified = env.downloads.get<DownloadJob>(chunkedKey(folder, filename, small.sha256))
    if (verified) {
      await verified.settled
      const after = await acquireCached(env, folder, filename)
      if (after?.record.smallSha256 === small.sha256) return after
      after?.release()
    }
    const manifest = await getManifest()
    if (!manifest) env.log.warn({ folder, filename }, 'no manifest: this resource is not tamper-evident (an upload older than manifests)')
    else if (manifest.sha256Small !== small.sha256 || manifest.smallBytes !== small.bytes) {
      throw new HttpError(502, `the small part of ${folder}/${filename} does not match its manifest`, { type: 'integrity' })
    }
    const partial = env.cache.partial(folder, filename, small.sha256)
    const started = performance.now()
    // Listed by /status while it runs.
    const progress = { folder, filename, bytesDone: 0, bytesTotal: manifest ? manifest.blobBytes - manifest.smallBytes : 0 }
    env.downloads.add(bigPartKey(folder, filename, small.sha256), progress)
    try {
      const held = await download(env, cdn, partial, folder, filename, small, manifest, progress)
      env.metrics.cdnDownload('ok', held.bytes, (performance.now() - started) / 1000)
      return held
    } catch (e) {
      env.metrics.cdnDownload('error', 0, (performance.now() - started) / 1000)
      const code = downloadStorageCode(e)
      if (!code) throw e
      env.log.error({ folder, filename, code }, `caching the big part failed: ${code}${code === 'ENOSPC' ? ' (the disk is full)' : ''}; the partial download is removed`)
      await partial.remove().catch(() => {})
      throw localStorageProblem(e, `the big part of ${folder}/${filename}`, 'cache-not-writable')
    } finally {
      env.downloads.delete(bigPartKey(folder, filename, small.sha256), progress)
      partial.close()
    }
  })
  // Every caller sharing the flight takes its own hold at once (these continuations run in the
  // microtasks of the flight's settlement); the flight's own hold is dropped after them.
  const mine = shared.retain()
  setImmediate(() => shared.release())
  return mine
}

/** Downloads (or resumes) the big part into its partial file, verifies it and commits it. */
async function download(env: Env, cdn: CdnSettings, partial: PartialFile, folder: string, filename: string, small: SmallPart, manifest: Manifest | null,
  progress: { bytesDone: number; bytesTotal: number }): Promise<HeldPart> {
  const smallSha = small.sha256
  const url = bigPartUrl(cdn, folder, filename)
  const what = `big part of ${folder}/${filename}`
  const attempts = env.config.CDN_READ_RETRIES + 1
  let integrityFailures = 0
  let restarts = 0
  let lastError: unknown
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) {
      env.metrics.cdnRetry()
      await new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** attempt)))
    }
    let part = await partial.state()
    if (part.bytes > 0 && !part.etag) {
      await partial.reset()
      part = { ...part, bytes: 0 }
    }
    const headers: Record<string, string> = {}
    if (part.bytes > 0) {
      env.metrics.cdnResume()
      headers.range = `bytes=${part.bytes}-`
      headers['if-match'] = part.etag!
    }
    let res
    try {
      res = await cdnRequest(env, cdn, 'read', { method: 'GET', url, headers })
    } catch (e) {
      lastError = upstreamProblem('the CDN', `the ${what}`, e)
      continue
    }
    const status = res.statusCode ?? 0
    const etag = header(res.headers.etag)
    if (status === 412 || (status === 206 && etag !== part.etag)) {
      // The object changed since the partial file began: never splice two versions.
      res.resume()
      env.log.info({ folder, filename }, 'the CDN object changed since the partial download began; restarting from zero')
      await partial.reset()
      if (restarts++ < 2) attempt--
      continue
    }
    if (status >= 500) {
      res.resume()
      lastError = cdnStatusProblem(status, what)
      continue
    }
    if (status !== 200 && status !== 206 && status !== 416) {
      res.resume()
      throw cdnStatusProblem(status, what)
    }
    const metaSmall = header(res.headers['x-amz-meta-small-sha256'])
    if (metaSmall && metaSmall !== smallSha) {
      res.resume()
      await partial.reset()
      throw new HttpError(502, `the CDN copy of ${folder}/${filename} belongs to another upload than the small part`, { type: 'parts-mismatch' })
    }
    const hash = createHash('sha256')
    try {
      await onLocalFile(async () => {
        if (status === 200) {
          await partial.reset()
          await partial.setEtag(etag)
        } else {
          await hashPartial(partial, hash)
        }
        // Make room under CACHE_MAX_BYTES for what is still to come (partials count).
        await partial.reserve(Number(header(res.headers['content-length'])) || 0)
      })
      progress.bytesDone = status === 200 ? 0 : part.bytes
      // Without a manifest, the size the CDN announces (what is on disk plus the rest for a 206).
      const announced = Number(header(res.headers['content-length']))
      if (!manifest && status !== 416 && announced > 0) progress.bytesTotal = progress.bytesDone + announced
      if (status === 416) res.resume()
      else {
        // Socket reads are fresh 64 KiB buffers: paced minor GCs let them be reused, not re-faulted.
        const pace = createGcPacer()
        await receive(res, partial.append(), (c) => { hash.update(c); pace(c.length); progress.bytesDone += c.length })
      }
    } catch (e) {
      // A full or unwritable disk is not the CDN's fault and is not retried.
      if (localStorageErrorCode(e)) {
        res.destroy()
        throw e
      }
      // A reset mid-body keeps the bytes on disk; the next attempt resumes from them.
      lastError = upstreamProblem('the CDN', `the ${what}`, e)
      env.log.warn({ folder, filename, attempt }, 'big-part download interrupted; will resume')
      continue
    }
    const sha256 = hash.digest('hex')
    const bytes = (await partial.state()).bytes
    const expected = header(res.headers['x-amz-meta-sha256'])
    const intact = (!expected || expected === sha256)
      && (!manifest || (manifest.sha256Big === sha256 && manifest.blobBytes === small.bytes + bytes))
    if (!intact) {
      await partial.reset()
      integrityFailures++
      env.metrics.cdnVerificationFailure()
      env.log.warn({ folder, filename, integrityFailures }, 'big part failed its sha256 check; discarded')
      if (integrityFailures >= 2) throw new HttpError(502, `the CDN copy of ${folder}/${filename} failed its integrity check`, { type: 'integrity' })
      // crypto.md §5b: one more download after a failed check, whatever CDN_READ_RETRIES says.
      attempt--
      continue
    }
    if (!expected && !manifest && !await decrypts(env, partial, small, bytes)) {
      // Nothing vouches for these bytes (an older upload) and they do not decrypt: never cached,
      // or every later load would answer 502 from the cache (a proxy's page, a truncated object).
      await partial.remove()
      env.metrics.cdnVerificationFailure()
      env.log.warn({ folder, filename }, 'the big part of an older upload does not decrypt (bad padding); discarded, not cached')
      throw new HttpError(502, `${folder}/${filename} does not decrypt: the CDN copy is not a big part of this resource (parts truncated or not of one upload)`, { type: 'decrypt-failed' })
    }
    const record: CacheRecord = { smallSha256: smallSha, bytes, sha256, etag, ...(manifest ? { manifest } : {}), storedAt: new Date().toISOString() }
    return partial.commit(record)
  }
  throw lastError ?? new HttpError(502, `the ${what} could not be downloaded`, { type: 'upstream-error' })
}
