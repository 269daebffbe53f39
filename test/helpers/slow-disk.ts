// A slow-disk double of the cache's partial files, for contract tests: bytes written to a partial
// file's append stream stay queued, in order, until the test or the code lets them through. Nothing
// races the clock: a queued write lands when its stream is ended (whoever waits for the flush gets
// it), when the test calls `flush()`, or right after a truncation of the file (`reset()`), which is
// when a real disk that is slow enough lands them if nothing waited for them first.
import type { Writable as WritableType } from 'node:stream'
import { Writable } from 'node:stream'
import type { BigPartCache, PartialFile } from '../../shared/contract/cache'

/** What the test sees of the double. */
export interface SlowDisk {
  /** Bytes handed to the append streams so far (queued or landed). */
  readonly written: number
  /** Resolves once at least `bytes` were handed to the append streams. */
  writtenAtLeast(bytes: number): Promise<void>
  /** Lets every queued write through; later writes of the same streams land at once. */
  flush(): void
  /** Restores the cache's own partial files. */
  restore(): void
}

/**
 * Wraps `cache.partial` so that each append stream queues its writes in front of the real file
 * stream (the same descriptor semantics: O_APPEND, so bytes let through after a truncation land
 * at the start of the file).
 */
export function slowDisk(cache: BigPartCache): SlowDisk {
  const own = cache.partial
  const opens = new Set<() => void>()
  let written = 0
  let waiters: { bytes: number; wake: () => void }[] = []
  const wrote = (n: number) => {
    written += n
    waiters = waiters.filter((w) => (written >= w.bytes ? (w.wake(), false) : true))
  }
  const flush = () => { for (const open of opens) open() }

  /** An append stream whose writes wait at a gate, then go to `real` one by one, in order. */
  const held = (real: WritableType): WritableType => {
    let open!: () => void
    const gate = new Promise<void>((r) => { open = r })
    opens.add(open)
    const w = new Writable({
      // Never apply back-pressure: the caller queues as much as it likes, as on a page cache that fills.
      highWaterMark: 1 << 30,
      write(chunk: Buffer, _e, done) { void gate.then(() => real.write(chunk, (e) => done(e ?? null))) },
      final(done) { real.end(); real.once('finish', () => done()); real.once('error', done) },
      destroy(e, done) { real.destroy(); done(e) },
    })
    const write = w.write.bind(w) as (...a: unknown[]) => boolean
    w.write = ((chunk: Buffer, ...rest: unknown[]) => {
      wrote(chunk.length)
      return write(chunk, ...rest)
    }) as typeof w.write
    // Ending the stream is waiting for its flush: the queued writes land.
    const end = w.end.bind(w) as (...a: unknown[]) => WritableType
    w.end = ((...a: unknown[]) => { open(); return end(...a) }) as typeof w.end
    return w
  }

  cache.partial = (folder, filename, smallSha256): PartialFile => {
    const p = own.call(cache, folder, filename, smallSha256)
    return {
      ...p,
      path: p.path,
      append: () => held(p.append()),
      // The truncation runs first; a write still queued lands after it.
      reset: async () => {
        await p.reset()
        flush()
      },
    }
  }
  return {
    get written() { return written },
    writtenAtLeast: (bytes) => new Promise((wake) => { if (written >= bytes) wake(); else waiters.push({ bytes, wake }) }),
    flush,
    restore: () => { cache.partial = own },
  }
}
