// Joins small || big and decrypts them as one stream after the last-block check (crypto.md §5 steps 3–4).
import { Readable } from 'node:stream'
import type { HeldPart } from '../../shared/contract/cache'
import type { Env } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { DecryptStream } from '../../shared/crypto/blob'
import { isBlobError } from '../../shared/crypto/errors'
import { plainLengthFromTail } from '../../shared/crypto/last-block'
import { resourceAesKey } from '../../shared/crypto/keys'

/**
 * The decrypted resource as a node stream with its exact length; 502 when the parts do not decrypt.
 * Takes over `held`: it is released when the stream closes (end, error or cancel) or when this throws.
 */
export async function openResource(env: Env, held: HeldPart, folder: string, filename: string, small: Buffer): Promise<{ stream: Readable; bytes: number }> {
  const n = small.length + held.bytes
  const key = resourceAesKey(env)
  let bytes: number
  try {
    const bigTail = held.bytes > 0 ? await held.readAt(Math.max(0, held.bytes - 32), Math.min(32, held.bytes)) : Buffer.alloc(0)
    const tail = Buffer.concat([small.subarray(Math.max(0, small.length - (32 - bigTail.length))), bigTail]).subarray(-32)
    bytes = plainLengthFromTail(key, tail.length === 32 ? tail : Buffer.alloc(32), n)
  } catch (e) {
    held.release()
    if (isBlobError(e)) throw new HttpError(502, `${folder}/${filename} does not decrypt: ${e.message} (parts truncated or not of one upload)`, { type: 'decrypt-failed' })
    throw e
  }
  // The file stream is made only once the caller reads, so no stream exists that nobody consumes.
  const joined = Readable.from((async function* () {
    if (small.length) yield small
    yield* held.stream()
  })(), { objectMode: false, highWaterMark: 1 << 20 })
  const decrypt = new DecryptStream(key)
  joined.once('error', (e) => decrypt.destroy(e))
  decrypt.once('close', () => {
    if (!joined.destroyed) joined.destroy()
    held.release()
  })
  return { stream: joined.pipe(decrypt), bytes }
}
