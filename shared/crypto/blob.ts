// The blob format `IV || AES-256-CBC/PKCS#7` as streaming node Transforms (crypto.md §1).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { createBlobDecipher, type BlobDecipher } from './blob-decipher'
import { Transform, type TransformCallback } from 'node:stream'
import { BadPaddingError, BlobTooShortError, BlobTruncatedError } from './errors'
import { createGcPacer } from './gc-pacer'

const ALG = 'aes-256-cbc'
/** AES block and IV size. */
export const BLOCK = 16

/** The 32-byte AES key of a key string: SHA-256 of its UTF-8 bytes. */
export function aesKey(keyString: string): Buffer {
  return createHash('sha256').update(keyString, 'utf8').digest()
}

/** Exact blob length for a plaintext of `plainBytes`: IV plus the padded ciphertext. */
export function blobLength(plainBytes: number): number {
  return BLOCK + (Math.floor(plainBytes / BLOCK) + 1) * BLOCK
}

/** A Transform that encrypts plaintext into a blob, IV first. `iv` is for test vectors only. */
export function createEncryptStream(key: Buffer, iv: Buffer = randomBytes(BLOCK)): Transform {
  const cipher = createCipheriv(ALG, key, iv)
  const pace = createGcPacer()
  let started = false
  return new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done) {
      if (!started) { started = true; this.push(iv) }
      pace(chunk.length)
      done(null, cipher.update(chunk))
    },
    flush(done) {
      if (!started) this.push(iv)
      done(null, cipher.final())
    },
  })
}

/**
 * A Transform that decrypts a blob. Raises BlobTooShortError, BlobTruncatedError or
 * BadPaddingError at the end; never ends cleanly on a malformed blob.
 */
export class DecryptStream extends Transform {
  #decipher: BlobDecipher
  #pace = createGcPacer()

  constructor(key: Buffer) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 })
    this.#decipher = createBlobDecipher(key)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#pace(chunk.length)
    const out = this.#decipher.update(chunk)
    done(null, out.length ? out : undefined)
  }

  override _flush(done: TransformCallback): void {
    let out: Buffer
    try {
      out = this.#decipher.final()
    } catch (e) {
      return done(e as Error)
    }
    done(null, out)
  }
}

/** Decrypts a whole small blob held in memory (cdn.yaml, small parts, manifests). */
export function decryptBuffer(key: Buffer, blob: Uint8Array): Buffer {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)
  if (b.length < BLOCK) throw new BlobTooShortError(b.length)
  if (b.length === BLOCK || b.length % BLOCK !== 0) throw new BlobTruncatedError(b.length)
  const d = createDecipheriv(ALG, key, b.subarray(0, BLOCK))
  try {
    return Buffer.concat([d.update(b.subarray(BLOCK)), d.final()])
  } catch {
    throw new BadPaddingError()
  }
}

/** Encrypts a small plaintext held in memory into a blob. */
export function encryptBuffer(key: Buffer, plain: Uint8Array, iv: Buffer = randomBytes(BLOCK)): Buffer {
  const c = createCipheriv(ALG, key, iv)
  return Buffer.concat([iv, c.update(plain), c.final()])
}
