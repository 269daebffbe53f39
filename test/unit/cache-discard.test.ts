// HeldPart.discard under load: a cached part that does not decrypt is checked (hashed) once, in the
// background, however many loads fail on it; the 502s do not wait for the hash; a part found intact
// (a wrong key) is not hashed again by the next failing load.
import { describe, expect, it, vi } from 'vitest'
import { contractWorld } from '../helpers/contract'

const hashes: { path: string; finish: (sha256: string) => void }[] = []
vi.mock('../../runtime/bindings/hash-file', () => ({
  // A hash that ends only when the test says so (it stands for a long read of a large part).
  hashFile: (path: string) => new Promise<string>((finish) => { hashes.push({ path, finish }) }),
}))

describe('a cached part that does not decrypt (a wrong salt)', () => {
  it('three failing loads answer at once and start one hash; found intact, the next failure hashes nothing', async () => {
    const w = await contractWorld()
    w.seed('good.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    const recorded = (await w.env.cache.record('models', 'good.bin'))!.sha256
    ;(w.env.config as { RESOURCE_KEY_SALT: string }).RESOURCE_KEY_SALT = 'a-wrong-salt-for-this-device'
    const statuses = await Promise.all([1, 2, 3].map(async () => (await w.req('/load/good.bin')).status))
    expect(statuses).toEqual([502, 502, 502])
    for (let i = 0; i < 100 && !hashes.length; i++) await new Promise((ok) => setTimeout(ok, 5))
    await new Promise((ok) => setTimeout(ok, 20))
    expect(hashes).toHaveLength(1)
    hashes[0].finish(recorded)
    await new Promise((ok) => setTimeout(ok, 20))
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await new Promise((ok) => setTimeout(ok, 20))
    expect(hashes).toHaveLength(1)
    expect(await w.env.cache.record('models', 'good.bin')).toMatchObject({ sha256: recorded })
  })
})
