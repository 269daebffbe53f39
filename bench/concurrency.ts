// Concurrency bench: 64 concurrent warm /load of an 8 MiB resource, 8 concurrent cold loads sharing one CDN download.
import { createHash, randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { post, startStack } from '../test/helpers/stack'
import { MiB, type Row, peakRss } from './lib'

const USER = ['bench-conc@example.com', 'bench-conc-pass']
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

export async function benchConcurrency(size = 8 * MiB, warmN = 64, coldN = 8): Promise<Row[]> {
  const s = await startStack({ [USER[0]]: [USER[1], 'Admin'] }, { MAX_CONCURRENT_TRANSFERS: String(warmN) })
  const firstCacheDir = s.loader.cacheDir
  try {
    const login = () => post(s.loader.url, '/login', { email: USER[0], password: USER[1] })
    await login()
    const data = randomBytes(size)
    const up = await fetch(`${s.loader.url}/upload/conc.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) })
    if (up.status !== 201) throw new Error(`upload ${up.status}`)
    const want = sha(data)
    const burst = async (n: number) => {
      const t0 = performance.now()
      const results = await Promise.all(Array.from({ length: n }, async () => {
        const r = await post(s.loader.url, '/load/conc.bin', {})
        return r.status === 200 && sha(new Uint8Array(await r.arrayBuffer())) === want
      }))
      return { ms: performance.now() - t0, errors: results.filter((ok) => !ok).length }
    }
    await s.restartLoader()
    await login()
    const warm = await burst(warmN)
    const warmRss = peakRss(s.loader.child.pid!)
    await s.restartLoader({ CACHE_DIR: `${s.loader.cacheDir}-cold`, MAX_CONCURRENT_TRANSFERS: String(warmN) })
    await login()
    s.faults.ranges = []
    const cold = await burst(coldN)
    const downloads = s.faults.ranges.length
    if (warm.errors || cold.errors) throw new Error(`concurrency: ${warm.errors} warm and ${cold.errors} cold errors`)
    return [
      { area: 'concurrency', what: `${warmN} concurrent warm /load, 0 errors, all bytes right`, bytes: size * warmN, ms: warm.ms, peakRssMiB: warmRss },
      { area: 'concurrency', what: `${coldN} concurrent cold /load, ${downloads} CDN download(s), 0 errors`, bytes: size * coldN, ms: cold.ms, peakRssMiB: peakRss(s.loader.child.pid!) },
    ]
  } finally {
    await s.stop() // removes the cache dir in use; the first one too:
    rmSync(firstCacheDir, { recursive: true, force: true })
  }
}
