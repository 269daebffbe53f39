// The big-part cache on a real full disk (a small tmpfs): a commit that cannot be finished gives the
// space back and leaves nothing under the final name. Mounting needs root (skipped with the reason otherwise).
import { createHash, randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { createCache, prepareCacheDir } from '../../runtime/bindings/cache'
import { filesUnder } from '../helpers/tmp'
import { workWithTmpfs } from '../helpers/tmpfs'

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const disk = workWithTmpfs('loader-test-cache-full-', '1m', 'full-disk cache test')
const { dir: mnt, mounted: canMount } = disk
afterAll(() => {
  disk.remove()
})

/** Every file under `dir`. */
const files = (dir: string) => filesUnder(dir).map((f) => f.path)

/** Fills the file system of `dir` to the last byte with `filler`. */
function fill(filler: string): void {
  const block = Buffer.alloc(4096)
  for (;;) {
    try {
      writeFileSync(filler, block, { flag: 'a' })
    } catch {
      return
    }
  }
}

describe('a full disk at the commit of a downloaded big part', () => {
  it.skipIf(!canMount)('the record cannot be written: the commit fails with ENOSPC, nothing stays under the final name, the space is given back', async () => {
    const dir = join(mnt, 'cache-dir')
    await prepareCacheDir(dir)
    const cache = createCache(dir, 64 << 20)
    const data = randomBytes(600 * 1024)
    const smallSha = sha(Buffer.from('small'))
    const partial = cache.partial('models', 'm.bin', smallSha)
    const filler = join(mnt, 'filler')
    try {
      await partial.state()
      await partial.setEtag('"e1"')
      await pipeline(Readable.from([data]), partial.append())
      // The last page goes to something else before the record is written.
      fill(filler)
      const failed = await partial.commit({ smallSha256: smallSha, bytes: data.length, sha256: sha(data), etag: '"e1"', storedAt: new Date().toISOString() })
        .then(() => null, (e: NodeJS.ErrnoException) => e)
      expect(failed?.code).toBe('ENOSPC')
      // What the download path does on a storage failure.
      await partial.remove()
    } finally {
      partial.close()
      rmSync(filler, { force: true })
    }
    // Nothing under the final name that no record describes, and no big file left anywhere.
    const left = files(join(dir, 'cache')).concat(files(join(dir, 'tmp')))
    expect(left).toEqual([])
    expect(await cache.acquire('models', 'm.bin')).toBeNull()
  })
})
