// Hashes a big part as it arrives, chunk by chunk against the manifest's `chunks` (crypto.md §5c).
// (The whole part's sha256Big is checked off the event loop once the file is complete.)
import { createHash } from 'node:crypto'

/** A chunk whose hash matched: its place in the big part. */
export interface VerifiedChunk {
  index: number
  start: number
  bytes: number
}

/** A chunk whose bytes do not hash to the manifest's value, or a part longer than the manifest says. */
export class ChunkMismatchError extends Error {
  override name = 'ChunkMismatchError'
  constructor(readonly index: number, why = 'failed its hash') {
    super(`chunk ${index} of the big part ${why}`)
  }
}

/** The verifier of one big part of `total` bytes. */
export interface ChunkVerifier {
  /** Bytes pushed so far. */
  readonly received: number
  /** Feeds the next bytes; returns the chunks they complete, verified. Throws ChunkMismatchError on a mismatch. */
  push(buf: Buffer): VerifiedChunk[]
}

/** Creates a verifier. It keeps no bytes: the caller writes them to disk as they pass. */
export function createChunkVerifier(chunks: readonly string[], chunkBytes: number, total: number): ChunkVerifier {
  let hash = createHash('sha256')
  let index = 0
  let fill = 0
  let received = 0
  return {
    get received() { return received },
    push(buf) {
      if (received + buf.length > total) throw new ChunkMismatchError(index, 'is longer than the manifest says')
      received += buf.length
      const done: VerifiedChunk[] = []
      for (let off = 0; off < buf.length;) {
        const size = Math.min(chunkBytes, total - index * chunkBytes)
        const take = Math.min(size - fill, buf.length - off)
        const piece = take === buf.length ? buf : buf.subarray(off, off + take)
        hash.update(piece)
        fill += take
        off += take
        if (fill === size) {
          if (hash.digest('hex') !== chunks[index]) throw new ChunkMismatchError(index)
          done.push({ index, start: index * chunkBytes, bytes: size })
          index++
          fill = 0
          hash = createHash('sha256')
        }
      }
      return done
    },
  }
}
