// The upload's first half: plaintext → count and hash → encrypt → split (small part kept) →
// temporary file of the big part. Nothing leaves the device here.
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Env } from '../../shared/contract/function'
import type { TempFile } from '../../shared/contract/cache'
import { HttpError, isHttpError } from '../../shared/contract/http-error'
import { createEncryptStream } from '../../shared/crypto/blob'
import { resourceAesKey } from '../../shared/crypto/keys'
import { plainMeter } from './meter'
import { SplitStream } from './split'
import { isLocalFsError, localStorageProblem } from '../../shared/http/local-storage-error'

/** 413 for a body above UPLOAD_MAX_BYTES. */
export const tooLarge = (max: number) => new HttpError(413, `the upload is larger than UPLOAD_MAX_BYTES (${max} bytes)`, { type: 'too-large' })

/** What staging leaves: plaintext size and hash, the small part and the big part's hashes and sizes. */
export interface StagedUpload {
  bytes: number
  sha256: string
  parts: ReturnType<SplitStream['result']>
}

/**
 * Streams `data` through the cipher into `temp` (the big part only). 413 past `max`, 507/500 for
 * a local write failure (naming its code), 400 for a body that ended early.
 */
export async function stageUpload(env: Env, data: Readable, temp: TempFile, max: number): Promise<StagedUpload> {
  const meter = plainMeter(max, () => tooLarge(max))
  const split = new SplitStream()
  const sink = temp.write()
  let sinkError: NodeJS.ErrnoException | undefined
  sink.once('error', (e) => { sinkError = e })
  try {
    await pipeline(data, meter.stream, createEncryptStream(resourceAesKey(env)), split, sink)
  } catch (e) {
    // The temporary file's own failure says what it is (full disk, read-only, …), whatever else broke with it.
    if (sinkError && isLocalFsError(sinkError)) throw localStorageProblem(sinkError, 'the upload', 'local-storage')
    if (isHttpError(e)) throw e
    throw new HttpError(400, 'the upload body ended early or could not be read', { type: 'bad-body' })
  }
  return { bytes: meter.bytes(), sha256: meter.sha256(), parts: split.result() }
}
