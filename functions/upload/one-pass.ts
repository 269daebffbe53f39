// The one-pass upload of crypto.md §4 (raw body with Content-Length): the big part streams from
// the cipher straight into the CDN PUT and into the cache file at once — no ciphertext
// temporary file read back, one pass over the bytes. Then the manifest, the small part last.
import { createHash } from 'node:crypto'
import { PassThrough, Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Ctx, Env } from '../../shared/contract/function'
import { HttpError, isHttpError } from '../../shared/contract/http-error'
import { blobLength, createEncryptStream } from '../../shared/crypto/blob'
import { resourceAesKey } from '../../shared/crypto/keys'
import { encodeManifest, manifestName } from '../../shared/crypto/manifest'
import { json } from '../../shared/http/json'
import { bigPartUrl, cdnRequest, cdnStatusProblem } from '../../shared/upstream/cdn'
import { upstreamProblem } from '../../shared/upstream/errors'
import { putResourceFile, withAuth } from '../../shared/upstream/resource-api'
import type { CdnSettings, SessionAuth } from '../../shared/upstream/session'
import { localStorageProblem } from '../../shared/http/local-storage-error'
import { stalledBody } from './idle-body'
import { plainMeter } from './meter'
import { phaseClock } from './phases'
import { SplitStream, smallSizeOf } from './split'

/** What the one-pass upload needs from the request. */
export interface OnePass {
  data: Readable
  /** The plaintext's exact length, from Content-Length. */
  length: number
  /** How long the loader has been waiting for the client's next byte. */
  idleMs(): number
  filename: string
  folder: string
  auth: SessionAuth
  cdn: CdnSettings
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const badLength = (what: string) => new HttpError(400, `the upload body is ${what} than its Content-Length`, { type: 'bad-body' })

/** Encrypts, PUTs and caches the big part in one pass, then writes the manifest and the small part. */
export async function uploadOnePass(env: Env, ctx: Ctx, p: OnePass): Promise<Response> {
  // crypto.md §4: the blob's length follows from the plaintext's (PKCS#7 always pads).
  const blobBytes = blobLength(p.length)
  const smallBytes = smallSizeOf(blobBytes)
  const bigBytes = blobBytes - smallBytes

  const clock = phaseClock()
  const meter = plainMeter(p.length, () => badLength('longer'), { tooFew: () => badLength('shorter') })
  // The small part is the blob's first `smallBytes` bytes: the PUT's headers need its hash.
  let head: Buffer[] = []
  let headBytes = 0
  let smallReady!: (small: Buffer) => void
  let smallFailed!: (e: unknown) => void
  const small = new Promise<Buffer>((ok, ko) => { smallReady = ok; smallFailed = ko })
  small.catch(() => {})
  const tap = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, done) {
      if (headBytes < smallBytes) {
        head.push(chunk)
        headBytes += chunk.length
        if (headBytes >= smallBytes) {
          smallReady(Buffer.concat(head).subarray(0, smallBytes))
          head = []
        }
      }
      done(null, chunk)
    },
  })
  const split = new SplitStream()
  // The big part goes to the cache file (written once, never read back) and on to the PUT.
  const temp = env.cache.temp('big')
  const file = temp.write()
  const tee = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, done) {
      if (file.write(chunk)) done(null, chunk)
      else file.once('drain', () => done(null, chunk))
    },
    flush(done) {
      file.end((e?: Error | null) => done(e))
    },
  })
  let fileError: NodeJS.ErrnoException | undefined
  file.on('error', (e) => { fileError = e; tee.destroy(e) })
  const putBody = new PassThrough({ highWaterMark: 1 << 20 })

  let cdnFailure: HttpError | undefined
  const stopFor = (e: HttpError) => {
    // The CDN's idle timer fires when no byte reaches it: that is the client's stall when the
    // loader has been waiting for the client's body meanwhile.
    if (e.status === 504 && p.idleMs() >= env.config.CDN_TIMEOUT_MS / 2) e = stalledBody(p.idleMs())
    cdnFailure ??= e
    putBody.destroy(e)
  }
  const flow = pipeline(p.data, meter.stream, createEncryptStream(resourceAesKey(env)), tap, split, tee, putBody)
  flow.catch((e) => smallFailed(e))
  const put = small.then(async (s) => {
    const smallSha256 = sha256(s)
    let res
    try {
      res = await cdnRequest(env, p.cdn, 'write', {
        method: 'PUT',
        url: bigPartUrl(p.cdn, p.folder, p.filename),
        headers: {
          'content-length': String(bigBytes),
          'content-type': 'application/octet-stream',
          // The hash is not known before the body; the manifest carries it (http.md §2.3).
          'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
          'x-amz-meta-small-sha256': smallSha256,
        },
        body: putBody,
      })
    } catch (e) {
      throw cdnFailure ?? upstreamProblem('the CDN', 'the big-part upload', e)
    }
    res.resume()
    if (res.statusCode !== 200) stopFor(cdnStatusProblem(res.statusCode ?? 0, 'big-part upload'))
    if (cdnFailure) throw cdnFailure
    const etag = res.headers.etag
    return { small: s, smallSha256, etag: Array.isArray(etag) ? etag[0] : etag }
  })
  put.catch((e) => stopFor(isHttpError(e) ? e : upstreamProblem('the CDN', 'the big-part upload', e)))

  try {
    try {
      await flow
      clock.mark('body')
    } catch (e) {
      await put.catch(() => {})
      // The CDN's failure stops the flow with that very error; any other error is the body's.
      if (cdnFailure && e === cdnFailure) throw cdnFailure
      if (fileError) throw localStorageProblem(fileError, 'the upload', 'local-storage')
      if (isHttpError(e)) throw e
      throw new HttpError(400, 'the upload body ended early or could not be read', { type: 'bad-body' })
    }
    const { small: smallPart, smallSha256, etag } = await put
    // The CDN answers once it has stored the whole body: its own work after the last byte.
    clock.mark('cdn')
    const parts = split.result()
    if (parts.blobBytes !== blobBytes) throw new Error(`one-pass upload: ${parts.blobBytes} blob bytes, expected ${blobBytes}`)
    const sha256Plain = meter.sha256()
    const bytes = meter.bytes()

    // Then the manifest, anchoring integrity in the authenticated API (crypto.md §5b).
    const manifest = { v: 1 as const, bytes, blobBytes, smallBytes, sha256Big: parts.bigSha256, sha256Small: smallSha256, sha256Plain, chunkBytes: parts.chunkBytes, chunks: parts.chunks }
    await withAuth(env, `${p.folder}/${manifestName(p.filename)}`, (token) => putResourceFile(env, token, p.folder, manifestName(p.filename), encodeManifest(manifest)), p.auth, true)
    // The small part last: it is the commit point.
    await withAuth(env, `${p.folder}/${p.filename}.small`, (token) => putResourceFile(env, token, p.folder, `${p.filename}.small`, smallPart), p.auth, true)
    clock.mark('api')

    // The upload is live upstream from here: a local cache failure only costs a later download.
    try {
      await env.cache.commit(p.folder, p.filename, { smallSha256, bytes: bigBytes, sha256: parts.bigSha256, etag, manifest, storedAt: new Date().toISOString() }, temp.path)
    } catch (e) {
      ctx.log.warn({ folder: p.folder, filename: p.filename, code: (e as NodeJS.ErrnoException).code }, 'upload stored upstream but not in the local cache')
    }
    clock.mark('cache')
    ctx.log.info({ folder: p.folder, filename: p.filename, bytes, onePass: true, ms: clock.ms }, 'upload')
    return json({ filename: p.filename, folder: p.folder, bytes, smallBytes, bigBytes, sha256: sha256Plain }, 201)
  } finally {
    p.data.destroy()
    file.destroy()
    await temp.remove()
  }
}
