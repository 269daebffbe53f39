// What one loader sends from a shared verified download (crypto.md §5c): the small part, then the
// big part's verified prefix read back from the partial file (the page cache; from the cache entry
// once committed), decrypted, and never past what is verified.
import { Readable, Transform } from 'node:stream'
import { HttpError } from '../../shared/contract/http-error'
import { DecryptStream } from '../../shared/crypto/blob'
import type { DownloadJob } from './download-job'
import { READ_BYTES } from './resource-stream'


const cut = (job: DownloadJob) => job.failure ?? new HttpError(502, `the download of ${job.folder}/${job.filename} ended early`)

/**
 * Reads bytes [start, end) of the part: from the partial file, or, once it was committed, the rest
 * of the part from the job's hold (kept for this follower until it detaches).
 */
async function* readRange(job: DownloadJob, start: number, end: number): AsyncGenerator<Buffer, number> {
  let n = 0
  try {
    for await (const c of job.partial.readRange(start, end - 1)) {
      // Once the download failed the file is no longer its own: a later download of the part may
      // truncate and rewrite it (same inode) with bytes no chunk hash vouches for yet.
      if (job.failure) throw job.failure
      n += (c as Buffer).length
      yield c as Buffer
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || n > 0) throw job.failure ?? e
    // Renamed into the cache meanwhile (or deleted after a failure).
    await job.settled
    if (!job.held) throw cut(job)
    // Positional reads of the held descriptor: no stream of the shared handle is left behind.
    for (let at = start; ;) {
      const c = await job.held.readAt(at, READ_BYTES)
      if (!c.length) break
      at += c.length
      n += c.length
      yield c
    }
  }
  if (n < end - start) throw cut(job)
  return n
}

/** The big part's bytes in order, each only once its chunk is verified. */
export async function* verifiedBytes(job: DownloadJob): AsyncGenerator<Buffer> {
  const total = job.bytesTotal
  let pos = 0
  while (pos < total) {
    if (job.failure) throw job.failure
    if (pos < job.verified) {
      pos += yield* readRange(job, pos, job.verified)
    } else {
      await job.changed()
    }
  }
}

/** Counts plaintext bytes; fails rather than send a byte past `bytes`, or end short of it. */
function exactLength(bytes: number): Transform {
  let sent = 0
  return new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(c: Buffer, _e, done) {
      sent += c.length
      if (sent > bytes) return done(new HttpError(502, 'the plaintext is longer than the manifest says', { type: 'integrity' }))
      done(null, c)
    },
    flush(done) {
      done(sent === bytes ? null : new HttpError(502, 'the plaintext is shorter than the manifest says', { type: 'integrity' }))
    },
  })
}

/**
 * The decrypted resource, streamed from a shared download as its chunks are verified. The caller
 * attached to `job` (DownloadJob.attach); this detaches when the stream closes (end, error or cancel).
 */
export function verifiedResource(job: DownloadJob, small: Buffer, key: Buffer): Readable {
  const joined = Readable.from((async function* () {
    if (small.length) yield small
    yield* verifiedBytes(job)
  })(), { objectMode: false, highWaterMark: 1 << 20 })
  const decrypt = new DecryptStream(key)
  const exact = exactLength(job.manifest.bytes)
  joined.once('error', (e) => decrypt.destroy(e))
  decrypt.once('error', (e) => exact.destroy(e))
  exact.once('close', () => {
    if (!joined.destroyed) joined.destroy()
    if (!decrypt.destroyed) decrypt.destroy()
    job.detach()
  })
  return joined.pipe(decrypt).pipe(exact)
}
