// The big-part download's copy into the partial file: a source cut mid-way still leaves every byte
// it delivered on disk (the next attempt resumes from them); a failing file is its own error.
import { Readable, Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { receive } from '../../functions/load/receive'

/** A file stand-in that takes its time per write, so that chunks wait in its buffer. */
function slowFile(store: Buffer[], fail?: Error): Writable {
  return new Writable({
    highWaterMark: 4,
    write(chunk, _e, done) {
      setTimeout(() => {
        if (fail) return done(fail)
        store.push(chunk)
        done()
      }, 5)
    },
  })
}

/** A source that delivers `chunks` in one go, then is cut. */
function cutSource(chunks: Buffer[]): Readable {
  let sent = false
  const src = new Readable({
    read() {
      if (sent) return
      sent = true
      for (const c of chunks) this.push(c)
      setImmediate(() => src.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })))
    },
  })
  return src
}

describe('receive (big part → partial file)', () => {
  it('a source cut mid-way: every byte it delivered is flushed to the file, then the cut is the error', async () => {
    const chunks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(16, i))
    const store: Buffer[] = []
    const seen: Buffer[] = []
    const e = await receive(cutSource(chunks), slowFile(store), (c) => seen.push(c)).then(() => null, (x: Error) => x)
    expect(e?.message).toBe('aborted')
    expect(Buffer.concat(store).equals(Buffer.concat(seen))).toBe(true)
    expect(Buffer.concat(store).equals(Buffer.concat(chunks))).toBe(true)
  })

  it('a file that fails is the error (a disk error), not the source', async () => {
    const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' })
    const src = Readable.from([Buffer.alloc(16), Buffer.alloc(16)])
    const e = await receive(src, slowFile([], enospc), () => {}).then(() => null, (x: Error) => x)
    expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC')
    expect(src.destroyed).toBe(true)
  })
})
