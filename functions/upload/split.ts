// The binary split of crypto.md §4, done while streaming: the small part stays in memory
// (at most 3072 bytes), only the big part passes on to the temporary file.
import { createHash, type Hash } from 'node:crypto'
import { CHUNK_BYTES } from '../../shared/crypto/manifest'
import { Transform, type TransformCallback } from 'node:stream'

/** Largest small part. */
export const SMALL_MAX = 3072
/** From this blob length on, the small part is exactly SMALL_MAX bytes (floor(0.3 n) ≥ 3072). */
const WHOLE_SMALL_FROM = 10240

/** `smallSize` for a blob of `n` bytes. */
export const smallSizeOf = (n: number) => Math.min(SMALL_MAX, Math.floor(0.3 * n))

/** Outputs only the big part of the blob written into it; `result()` gives the small part and hashes. */
export class SplitStream extends Transform {
  #head: Buffer[] = []
  #headBytes = 0
  #decided = false
  #small = Buffer.alloc(0)
  #bigHash = createHash('sha256')
  #total = 0
  // Chunk hashes of the big part (crypto.md §5c), computed as it passes.
  #chunks: string[] = []
  #chunkHash: Hash = createHash('sha256')
  #chunkFill = 0

  constructor() {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 })
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.#total += chunk.length
    if (this.#decided) return done(null, this.#big(chunk))
    this.#head.push(chunk)
    this.#headBytes += chunk.length
    if (this.#headBytes <= WHOLE_SMALL_FROM) return done()
    // The blob is longer than 10240 bytes: the small part is its first 3072 bytes.
    this.#decided = true
    const head = Buffer.concat(this.#head)
    this.#head = []
    this.#small = Buffer.from(head.subarray(0, SMALL_MAX))
    done(null, this.#big(head.subarray(SMALL_MAX)))
  }

  override _flush(done: TransformCallback): void {
    if (!this.#decided) {
      const head = Buffer.concat(this.#head)
      const s = smallSizeOf(head.length)
      this.#small = Buffer.from(head.subarray(0, s))
      const big = head.subarray(s)
      if (big.length) this.push(this.#big(big))
    }
    done()
  }

  #big(chunk: Buffer): Buffer {
    this.#bigHash.update(chunk)
    for (let off = 0; off < chunk.length;) {
      const take = Math.min(CHUNK_BYTES - this.#chunkFill, chunk.length - off)
      this.#chunkHash.update(take === chunk.length ? chunk : chunk.subarray(off, off + take))
      this.#chunkFill += take
      off += take
      if (this.#chunkFill === CHUNK_BYTES) {
        this.#chunks.push(this.#chunkHash.digest('hex'))
        this.#chunkHash = createHash('sha256')
        this.#chunkFill = 0
      }
    }
    return chunk
  }

  /** After the end (call once): the small part, its hash, the big part's hash, chunk hashes and sizes. */
  result() {
    const bigSha256 = this.#bigHash.digest('hex')
    if (this.#chunkFill > 0) this.#chunks.push(this.#chunkHash.digest('hex'))
    return {
      chunkBytes: CHUNK_BYTES,
      chunks: this.#chunks,
      small: this.#small,
      smallSha256: createHash('sha256').update(this.#small).digest('hex'),
      bigSha256,
      blobBytes: this.#total,
      bigBytes: this.#total - this.#small.length,
    }
  }
}
