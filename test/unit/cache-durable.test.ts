// A big part reaches the disk before its final name: both commit paths (a download's partial
// file, an upload's temporary) flush the part's data before the rename into place.
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'

const calls: string[] = []
vi.mock('node:fs/promises', async (importOriginal) =>
  (await import('../helpers/flush-recorder')).recordFlushes(await importOriginal<typeof import('node:fs/promises')>(), calls))
const { createCache, prepareCacheDir } = await import('../../runtime/bindings/cache')

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const dirs: string[] = []
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })
afterEach(() => { calls.length = 0 })

async function world() {
  const dir = mkdtempSync(join(tmpdir(), 'loader-test-durable-'))
  dirs.push(dir)
  await prepareCacheDir(dir)
  return createCache(dir, 1 << 30)
}

/** The index of the rename of `from` into the final part, and of the last flush of `from` before it. */
function order(from: string) {
  const rename = calls.findIndex((c) => c.startsWith(`rename ${from} -> `) && c.endsWith('.big'))
  const flush = calls.lastIndexOf(`flush ${from}`, rename)
  return { rename, flush }
}

describe('cache commits are durable', () => {
  it('a download: the partial file is flushed before it is renamed into place', async () => {
    const cache = await world()
    const data = Buffer.alloc(300_000, 7)
    const partial = cache.partial('models', 'm.bin', sha(Buffer.from('small')))
    await partial.state()
    await pipeline(Readable.from([data]), partial.append())
    const held = await partial.commit({ smallSha256: sha(Buffer.from('small')), bytes: data.length, sha256: sha(data), storedAt: new Date().toISOString() })
    held.release()
    partial.close()
    const { rename, flush } = order(partial.path)
    expect(rename).toBeGreaterThan(-1)
    expect(flush).toBeGreaterThan(-1)
    expect(flush).toBeLessThan(rename)
  })

  it('an upload: the temporary (or its staged tail) is flushed before it is renamed into place', async () => {
    const cache = await world()
    for (const offset of [0, 100]) {
      calls.length = 0
      const temp = cache.temp('big')
      await pipeline(Readable.from([Buffer.alloc(200_000, 3)]), temp.write())
      await cache.commit('models', `u${offset}.bin`, { smallSha256: sha(Buffer.from('s')), bytes: 200_000 - offset, sha256: 'x'.repeat(64), storedAt: new Date().toISOString() }, temp.path, offset)
      const from = calls.find((c) => c.startsWith('rename ') && c.endsWith(`u${offset}.bin.big`))!.split(' ')[1]
      const { rename, flush } = order(from)
      expect(flush).toBeGreaterThan(-1)
      expect(flush).toBeLessThan(rename)
      await temp.remove()
    }
  })
})
