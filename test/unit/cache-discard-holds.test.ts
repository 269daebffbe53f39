// A discard check pins nothing: failing loads waiting on a check (here: a hash that never settles)
// do not each keep a descriptor open, and the part stays evictable.
import { readdirSync } from 'node:fs'
import { describe, expect, it, vi } from 'vitest'
import { contractWorld } from '../helpers/contract'

vi.mock('../../runtime/bindings/hash-file', () => ({ hashFile: () => new Promise<string>(() => {}) }))
const fds = () => readdirSync('/proc/self/fd').length
const setSalt = (w: { env: { config: unknown } }, s: string) => { (w.env.config as { RESOURCE_KEY_SALT: string }).RESOURCE_KEY_SALT = s }

describe('a discard check that waits', () => {
  it('holds no descriptor of the loads that failed', async () => {
    const w = await contractWorld()
    w.seed('good.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    setSalt(w, 'a-wrong-salt')
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await new Promise((ok) => setTimeout(ok, 100))
    const before = fds()
    for (let i = 0; i < 50; i++) expect((await w.req('/load/good.bin')).status).toBe(502)
    await new Promise((ok) => setTimeout(ok, 300))
    expect(fds() - before).toBeLessThan(5)
  })
})
