// The verified-streaming download of crypto.md §5c: the big part streams from the CDN into the
// partial file, each chunk is checked against the manifest as it completes and published to the
// loaders following the job; the whole part is checked against sha256Big before it is committed.
import { finished } from 'node:stream/promises'
import type { IncomingMessage } from 'node:http'
import type { Writable } from 'node:stream'
import type { CacheRecord, HeldPart } from '../../shared/contract/cache'
import type { Env } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { downloadStorageCode, localStorageProblem, markLocal } from '../../shared/http/local-storage-error'
import type { Manifest } from '../../shared/crypto/manifest'
import { bigPartUrl, cdnRequest, cdnStatusProblem } from '../../shared/upstream/cdn'
import { upstreamProblem } from '../../shared/upstream/errors'
import type { CdnSettings } from '../../shared/upstream/session'
import type { SmallPart } from './big-part'
import { ChunkMismatchError, createChunkVerifier, type ChunkVerifier, type VerifiedChunk } from './chunk-verifier'
import { DownloadJob } from './download-job'

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)

/** The registry key of the verified download of a big part belonging to a small part. */
export const chunkedKey = (folder: string, filename: string, smallSha: string) => `chunked:${folder}/${filename}:${smallSha}`

/** The download running for this part, or a new one started in the background (single flight through `env.downloads`). */
export function startChunkedDownload(env: Env, cdn: CdnSettings, folder: string, filename: string, small: SmallPart, manifest: Manifest): DownloadJob {
  const key = chunkedKey(folder, filename, small.sha256)
  const running = env.downloads.get<DownloadJob>(key)
  if (running) return running
  // The partial file shares the key of the download: name and SHA-256 of the small part.
  const partial = env.cache.partial(folder, filename, small.sha256)
  const job = env.downloads.add(key, new DownloadJob(folder, filename, manifest, partial))
  const started = performance.now()
  download(env, cdn, job, small).then((held) => {
    env.metrics.cdnDownload('ok', held.bytes, (performance.now() - started) / 1000)
    env.log.debug({ folder, filename, bytes: held.bytes, ms: Math.round(performance.now() - started) }, 'verified download committed')
    job.commit(held)
  }, async (e: Error) => {
    env.metrics.cdnDownload('error', 0, (performance.now() - started) / 1000)
    const code = downloadStorageCode(e)
    if (code) {
      env.log.error({ folder, filename, code }, `caching the big part failed: ${code}${code === 'ENOSPC' ? ' (the disk is full)' : ''}; the partial download is removed`)
      await partial.remove().catch(() => {})
      e = localStorageProblem(e, `the big part of ${folder}/${filename}`, 'cache-not-writable')
    } else env.log.warn({ folder, filename, err: e.message }, 'verified download failed')
    job.fail(e)
  }).finally(() => {
    env.downloads.delete(key, job)
    partial.close()
  })
  return job
}

/**
 * Feeds the CDN body through the verifier into the partial file, event by event (no promise per
 * socket read, so the 64 KiB buffers die young). A chunk is published once its last byte is on
 * disk (write callbacks run in order). Rejects on a bad chunk, a write error or a cut body.
 */
function bodyToPartial(res: IncomingMessage, v: ChunkVerifier, job: DownloadJob, out: Writable, skip = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      res.off('data', onData)
      res.destroy()
      reject(e)
    }
    const onData = (buf: Buffer) => {
      // The bytes the file already has (a whole object sent again for a resume): dropped.
      if (skip > 0) {
        const drop = Math.min(skip, buf.length)
        skip -= drop
        if (drop === buf.length) return
        buf = buf.subarray(drop)
      }
      let done
      try {
        done = v.push(buf)
      } catch (e) {
        return fail(e as Error)
      }
      job.bytesDone = v.received
      if (!out.write(buf, done.length ? (e) => { if (!e) for (const c of done) job.publish(c) } : undefined)) {
        res.pause()
        out.once('drain', () => res.resume())
      }
    }
    res.on('data', onData)
    res.once('end', () => resolve())
    res.once('error', fail)
    res.once('close', () => { if (!res.complete) fail(new Error('the body ended early')) })
    out.once('error', fail)
  })
}

const integrity = (folder: string, filename: string, why: string) =>
  new HttpError(502, `the CDN copy of ${folder}/${filename} failed its integrity check (${why})`, { type: 'integrity' })

/** Waits before attempt `attempt` (> 0) and counts the retry; nothing when no attempt is left. */
function backoff(env: Env, attempt: number): Promise<void> {
  if (attempt > env.config.CDN_READ_RETRIES) return Promise.resolve()
  env.metrics.cdnRetry()
  return new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** attempt)))
}

async function download(env: Env, cdn: CdnSettings, job: DownloadJob, small: SmallPart): Promise<HeldPart> {
  const { folder, filename, manifest, partial } = job
  const total = job.bytesTotal
  const chunks = manifest.chunks!
  const chunkBytes = manifest.chunkBytes!
  const fresh = () => createChunkVerifier(chunks, chunkBytes, total)
  const what = `big part of ${folder}/${filename}`
  let v = fresh()
  let etag: string | undefined
  // Chunks verified on disk; published once the CDN confirms the object is the same version.
  let fromDisk: VerifiedChunk[] = []

  // A partial file a previous attempt or process left: every chunk on it is hashed again.
  let part = await partial.state()
  if (part.bytes > 0 && (!part.etag || part.bytes > total)) {
    await partial.reset()
    part = { ...part, bytes: 0 }
  }
  if (part.bytes > 0) {
    try {
      for await (const c of partial.readRange(0, part.bytes - 1)) fromDisk.push(...v.push(c as Buffer))
      etag = part.etag
    } catch (e) {
      if (!(e instanceof ChunkMismatchError)) throw e
      env.log.warn({ folder, filename, chunk: e.index }, 'a chunk of the partial download failed its hash; starting from zero')
      await partial.reset()
      v = fresh()
      fromDisk = []
    }
  }
  job.bytesDone = v.received
  // Make room under CACHE_MAX_BYTES for what is still to come (partials count).
  await partial.reserve(total - v.received)

  // One write stream per attempt, always flushed and closed before anything else touches the file
  // (a reset, a resume, the next attempt): bytes queued by a cut attempt must land where they were
  // hashed, never behind a truncation, so the file always holds exactly what the verifier saw.
  let out: Writable | undefined
  let writeError: Error | null = null
  const settle = async () => {
    const w = out
    out = undefined
    if (!w) return
    if (!w.destroyed) w.end()
    await finished(w).catch((e: Error) => { writeError ??= e })
  }
  const failIntegrity = async (e: Error) => {
    out?.destroy()
    out = undefined
    env.metrics.cdnVerificationFailure()
    env.log.warn({ folder, filename, reason: e.message }, 'big part failed its integrity check; partial download deleted')
    await partial.remove().catch(() => {})
    return integrity(folder, filename, e.message)
  }
  try {
    let lastError: unknown
    let restarts = 0
    for (let attempt = 0; v.received < total && attempt <= env.config.CDN_READ_RETRIES;) {
      if (v.received > 0 && !etag) {
        // No version to pin a resume to: start again while nothing was sent, else give up.
        if (job.verified > 0) throw new HttpError(502, `the CDN gave no ETag for the ${what}, so it cannot be resumed safely`, { type: 'upstream-error' })
        await partial.reset()
        v = fresh()
        fromDisk = []
        job.bytesDone = 0
      }
      const resuming = v.received > 0
      if (resuming) env.metrics.cdnResume()
      const headers: Record<string, string> = resuming ? { range: `bytes=${v.received}-`, 'if-match': etag! } : {}
      let res
      try {
        res = await cdnRequest(env, cdn, 'read', { method: 'GET', url: bigPartUrl(cdn, folder, filename), headers })
      } catch (e) {
        lastError = upstreamProblem('the CDN', `the ${what}`, e)
        await backoff(env, ++attempt)
        continue
      }
      const status = res.statusCode ?? 0
      const resEtag = header(res.headers.etag)
      // A server that ignores Range answers 200 with the whole object: the same version (its ETag)
      // resumes all the same, the bytes already on disk dropped from the body.
      const wholeAgain = resuming && status === 200 && resEtag !== undefined && resEtag === etag
      if (resuming && (status === 412 || (status === 200 && !wholeAgain) || (status === 206 && resEtag !== etag))) {
        // Another version of the object: never splice two. Restart only while nothing was sent.
        res.resume()
        if (job.verified > 0 || restarts++ >= 2) throw new HttpError(502, `the CDN object of the ${what} changed during the download`, { type: 'upstream-error' })
        env.log.info({ folder, filename }, 'the CDN object changed since the partial download began; restarting from zero')
        await partial.reset()
        v = fresh()
        fromDisk = []
        job.bytesDone = 0
        continue
      }
      if (status >= 500) {
        res.resume()
        lastError = cdnStatusProblem(status, what)
        await backoff(env, ++attempt)
        continue
      }
      if (status === 416) {
        res.resume()
        throw await failIntegrity(new Error('the object is shorter than the manifest says'))
      }
      if (status !== (resuming && !wholeAgain ? 206 : 200)) {
        res.resume()
        throw cdnStatusProblem(status, what)
      }
      const metaSmall = header(res.headers['x-amz-meta-small-sha256'])
      if (metaSmall && metaSmall !== small.sha256) {
        res.resume()
        await partial.reset()
        throw new HttpError(502, `the CDN copy of ${folder}/${filename} belongs to another upload than the small part`, { type: 'parts-mismatch' })
      }
      const metaBig = header(res.headers['x-amz-meta-sha256'])
      if (metaBig && metaBig !== manifest.sha256Big) {
        res.resume()
        throw await failIntegrity(new Error('the object is not the one the manifest describes'))
      }
      if (!resuming) {
        etag = resEtag
        try {
          await partial.setEtag(etag)
        } catch (e) {
          // A full disk: the body nobody will read must not keep the CDN connection open.
          res.destroy()
          throw e
        }
      }
      for (const c of fromDisk) job.publish(c)
      fromDisk = []
      const w = (out = partial.append())
      w.on('error', (e) => { writeError ??= markLocal(e) })
      try {
        await bodyToPartial(res, v, job, w, wholeAgain ? v.received : 0)
        await settle()
        if (writeError) throw writeError
        if (v.received < total) throw new Error('the body ended early')
      } catch (e) {
        if (e instanceof ChunkMismatchError) throw await failIntegrity(e)
        // Whatever the cut left queued is written before the next attempt looks at the file.
        await settle()
        if (writeError) throw writeError
        // Cut or stalled mid-body: the bytes so far stay; the next attempt resumes after them.
        lastError = upstreamProblem('the CDN', `the ${what}`, e)
        env.log.warn({ folder, filename, attempt, bytes: v.received }, 'verified download interrupted; will resume')
        await backoff(env, ++attempt)
      }
    }
    if (v.received < total) throw lastError ?? new HttpError(502, `the ${what} could not be downloaded`, { type: 'upstream-error' })
    await settle()
    if (writeError) throw writeError
    for (const c of fromDisk) job.publish(c)
    // The whole part is hashed on a worker thread while the followers send the last chunks.
    const sha256 = await partial.hash()
    if (sha256 !== manifest.sha256Big) throw await failIntegrity(new Error('sha256Big does not match'))
    const record: CacheRecord = { smallSha256: small.sha256, bytes: total, sha256, etag, manifest, storedAt: new Date().toISOString() }
    return await partial.commit(record)
  } catch (e) {
    out?.destroy()
    throw e
  }
}
