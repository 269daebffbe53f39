// Counts and hashes the plaintext of an upload as it streams; refuses more (or fewer) bytes than allowed.
import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'

/** A pass-through stream that counts and hashes what flows through it. */
export interface PlainMeter {
  stream: Transform
  bytes(): number
  /** Hex SHA-256 of the plaintext; call once, after the end. */
  sha256(): string
}

/**
 * Past `max` bytes the stream fails with `tooMany()`; when `exact` is set, ending short of `max`
 * fails with `tooFew()` (a body shorter than its Content-Length).
 */
export function plainMeter(max: number, tooMany: () => Error, exact?: { tooFew: () => Error }): PlainMeter {
  let bytes = 0
  const hash = createHash('sha256')
  const stream = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, done) {
      bytes += chunk.length
      if (bytes > max) return done(tooMany())
      hash.update(chunk)
      done(null, chunk)
    },
    flush: (done) => done(exact && bytes < max ? exact.tooFew() : null),
  })
  return { stream, bytes: () => bytes, sha256: () => hash.digest('hex') }
}
