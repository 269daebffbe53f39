// The blob format's decryption as two plain calls (update, final): the one core under DecryptStream
// and the load's pull-based body, so a hot loop needs no Transform between the file and the socket.
import { createDecipheriv, type Decipher } from 'node:crypto'
import { BadPaddingError, BlobTooShortError, BlobTruncatedError } from './errors'

const ALG = 'aes-256-cbc'
const BLOCK = 16
const EMPTY = Buffer.alloc(0)

/** An incremental blob decryption: `update` takes any slices of `IV || ciphertext` in order. */
export interface BlobDecipher {
  /** Plaintext decrypted so far from `chunk` (may be empty while the IV is still being read). */
  update(chunk: Buffer): Buffer
  /** The rest of the plaintext; throws BlobTooShortError, BlobTruncatedError or BadPaddingError. */
  final(): Buffer
}

/** A fresh decryption of one blob under `key`. */
export function createBlobDecipher(key: Buffer): BlobDecipher {
  const iv: Buffer[] = []
  let ivBytes = 0
  let total = 0
  let decipher: Decipher | undefined
  return {
    update(chunk) {
      total += chunk.length
      if (!decipher) {
        const need = BLOCK - ivBytes
        if (chunk.length < need) {
          iv.push(chunk)
          ivBytes += chunk.length
          return EMPTY
        }
        iv.push(chunk.subarray(0, need))
        decipher = createDecipheriv(ALG, key, Buffer.concat(iv))
        chunk = chunk.subarray(need)
        if (chunk.length === 0) return EMPTY
      }
      return decipher.update(chunk)
    },
    final() {
      if (total < BLOCK) throw new BlobTooShortError(total)
      if (total === BLOCK || total % BLOCK !== 0) throw new BlobTruncatedError(total)
      try {
        return decipher!.final()
      } catch {
        throw new BadPaddingError()
      }
    },
  }
}
