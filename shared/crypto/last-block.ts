// Validates a blob's padding from its last 32 bytes alone and gives the plaintext length (crypto.md §5 step 3).
import { createDecipheriv } from 'node:crypto'
import { BadPaddingError, BlobTooShortError, BlobTruncatedError } from './errors'
import { BLOCK } from './blob'

/**
 * Checks the PKCS#7 padding of a blob of `blobBytes` whose last two blocks are `tail`
 * (`C_prev || C_last`; for a one-block blob, `IV || C_1`). Returns the plaintext length.
 */
export function plainLengthFromTail(key: Buffer, tail: Uint8Array, blobBytes: number): number {
  if (blobBytes < BLOCK) throw new BlobTooShortError(blobBytes)
  if (blobBytes === BLOCK || blobBytes % BLOCK !== 0) throw new BlobTruncatedError(blobBytes)
  if (tail.length !== 2 * BLOCK) throw new RangeError('tail must be the last 32 bytes')
  const prev = tail.subarray(0, BLOCK)
  const last = tail.subarray(BLOCK)
  const d = createDecipheriv('aes-256-cbc', key, prev)
  let kept: number
  try {
    kept = Buffer.concat([d.update(last), d.final()]).length
  } catch {
    throw new BadPaddingError()
  }
  return blobBytes - BLOCK - (BLOCK - kept)
}
