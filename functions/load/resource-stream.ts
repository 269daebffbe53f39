// Joins small || big and decrypts them as one pull-based web stream after the last-block check
// (crypto.md §5 steps 3–4). One read ahead of the cached file, one decryption per pull, no
// Transform or iterator between the file and the socket: this is the warm load's hot loop.
import type { HeldPart } from '../../shared/contract/cache'
import type { Env } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { createBlobDecipher } from '../../shared/crypto/blob-decipher'
import { isBlobError } from '../../shared/crypto/errors'
import { isLocalFsError, localStorageProblem, markLocal } from '../../shared/http/local-storage-error'
import { createGcPacer } from '../../shared/crypto/gc-pacer'
import { plainLengthFromTail } from '../../shared/crypto/last-block'
import { resourceAesKey } from '../../shared/crypto/keys'

/** Bytes per read of a cached or partial big part (about the size of one socket write). */
export const READ_BYTES = 1 << 20

/**
 * The decrypted resource as a web stream with its exact length; 502 when the parts do not decrypt.
 * Takes over `held`: it is released when the stream ends, fails or is cancelled, or when this throws.
 */
export async function openResource(env: Env, held: HeldPart, folder: string, filename: string, small: Buffer): Promise<{ body: ReadableStream<Uint8Array>; bytes: number }> {
  const n = small.length + held.bytes
  const key = resourceAesKey(env)
  let bytes: number
  try {
    const bigTail = held.bytes > 0 ? await held.readAt(Math.max(0, held.bytes - 32), Math.min(32, held.bytes)) : Buffer.alloc(0)
    const tail = Buffer.concat([small.subarray(Math.max(0, small.length - (32 - bigTail.length))), bigTail]).subarray(-32)
    bytes = plainLengthFromTail(key, tail.length === 32 ? tail : Buffer.alloc(32), n)
  } catch (e) {
    // A part that does not decrypt with the small part it was cached for: checked in the background
    // and dropped if the disk changed it, so the next load downloads it again.
    if (isBlobError(e)) void held.discard().catch(() => {})
    held.release()
    if (isBlobError(e)) throw new HttpError(502, `${folder}/${filename} does not decrypt: ${e.message} (parts truncated or not of one upload)`, { type: 'decrypt-failed' })
    // The cached file cannot be read: storage the loader cannot use, not a bug.
    if (isLocalFsError(e)) throw localStorageProblem(markLocal(e), `reading the cached big part of ${folder}/${filename}`, 'cache-not-writable')
    throw e
  }
  const decipher = createBlobDecipher(key)
  const pace = createGcPacer()
  let position = 0
  let ahead: Promise<Buffer> | undefined
  let done = false
  const readNext = () => {
    const length = Math.min(READ_BYTES, held.bytes - position)
    const at = position
    position += length
    const read = length === 0 ? Promise.resolve(Buffer.alloc(0)) : held.readAt(at, length).then((b) => {
      if (b.length !== length) throw new Error(`cached big part ${folder}/${filename} ends at ${at + b.length} bytes, ${held.bytes} recorded`)
      return b
    })
    read.catch(() => {}) // awaited by the next pull; a cancel may leave it unawaited
    return read
  }
  const finish = () => {
    if (done) return
    done = true
    held.release()
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      // The small part first; the first read of the big part starts at once.
      ahead = readNext()
      const out = decipher.update(small)
      if (out.length) controller.enqueue(out)
    },
    async pull(controller) {
      try {
        // A pull must hand over a chunk or end: the stream asks again only after a chunk (the
        // decipher holds back its last block, so a short read can give nothing yet).
        for (;;) {
          const chunk = await ahead!
          if (chunk.length === 0) {
            const last = decipher.final()
            finish()
            if (last.length) controller.enqueue(last)
            controller.close()
            return
          }
          ahead = readNext()
          pace(chunk.length)
          const out = decipher.update(chunk)
          if (out.length) return controller.enqueue(out)
        }
      } catch (e) {
        finish()
        controller.error(e)
      }
    },
    cancel() {
      finish()
    },
  }, { highWaterMark: 0 })
  return { body, bytes }
}
