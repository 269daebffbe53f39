// HeldPart.discard's checks (runtime/bindings/cache/discard.ts): one hash at a time for the whole
// cache; a part found intact is trusted for a minute, then twice as long each time it is found
// intact again; a read error of the disk (EIO) removes the part, any other failure of the hash
// leaves no verdict.
import { execFileSync } from 'node:child_process'
import { open, stat } from 'node:fs/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { contractWorld } from '../helpers/contract'

const calls: string[] = []
let inFlight = 0
let most = 0
let answer: (path: string) => Promise<string> = async () => 'unset'
vi.mock('../../runtime/bindings/hash-file', () => ({
  hashFile: async (path: string) => {
    calls.push(path)
    most = Math.max(most, ++inFlight)
    try {
      await new Promise((ok) => setTimeout(ok, 10))
      return await answer(path)
    } finally {
      inFlight--
    }
  },
}))
const settled = async (n: number) => { for (let i = 0; i < 200 && calls.length < n; i++) await new Promise((ok) => setTimeout(ok, 5)); await new Promise((ok) => setTimeout(ok, 40)) }
const setSalt = (w: { env: { config: unknown } }, s: string) => { (w.env.config as { RESOURCE_KEY_SALT: string }).RESOURCE_KEY_SALT = s }
const fail = (code: string) => async () => { throw Object.assign(new Error(`${code}: failed`), { code }) }
afterEach(() => { vi.useRealTimers(); calls.length = 0; most = 0 })

describe('the discard checks', () => {
  it('a hash that fails for another reason than the disk (EMFILE) is no verdict; a read error of the disk (EIO) removes the part', async () => {
    const w = await contractWorld()
    w.seed('good.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    setSalt(w, 'a-wrong-salt')
    answer = fail('EMFILE')
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await settled(1)
    expect(calls).toHaveLength(1)
    expect(await w.env.cache.record('models', 'good.bin')).not.toBeNull()
    answer = fail('EIO')
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await settled(2)
    expect(calls).toHaveLength(2)
    expect(await w.env.cache.record('models', 'good.bin')).toBeNull()
  })

  it('parts failing at once are hashed one at a time', async () => {
    const w = await contractWorld()
    const names = ['a.bin', 'b.bin', 'c.bin', 'd.bin']
    for (const n of names) w.seed(n)
    expect((await w.login()).status).toBe(200)
    for (const n of names) expect((await w.req(`/load/${n}`)).status).toBe(200)
    answer = async () => 'not-the-recorded-hash'
    setSalt(w, 'a-wrong-salt')
    expect(await Promise.all(names.map(async (n) => (await w.req(`/load/${n}`)).status))).toEqual([502, 502, 502, 502])
    await settled(4)
    expect(calls).toHaveLength(4)
    expect(most).toBe(1)
  })

  it('an intact part is trusted a minute, then twice as long; corrupted later (metadata unchanged), it is found once the trust runs out', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const w = await contractWorld()
    w.seed('good.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    const recorded = (await w.env.cache.record('models', 'good.bin'))!.sha256
    const salt = w.env.config.RESOURCE_KEY_SALT as string
    answer = async () => recorded
    setSalt(w, 'a-wrong-salt')
    const failing = async (n: number) => { expect((await w.req('/load/good.bin')).status).toBe(502); await settled(n) }
    await failing(1)
    expect(calls).toHaveLength(1)
    await failing(2) // within the minute: trusted
    expect(calls).toHaveLength(1)
    vi.setSystemTime(Date.now() + 61_000)
    await failing(2) // checked again, intact: now trusted two minutes
    expect(calls).toHaveLength(2)
    vi.setSystemTime(Date.now() + 61_000)
    await failing(3)
    expect(calls).toHaveLength(2)
    // The salt fixed, then bit rot: the bytes change, the inode, size and mtime do not.
    setSalt(w, salt)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    const path = w.env.cache.pathOf('models', 'good.bin')
    const before = await stat(path, { bigint: true })
    const fh = await open(path, 'r+')
    await fh.write(Buffer.alloc(64, 0xaa), 0, 64, Number(before.size) - 64)
    await fh.close()
    execFileSync('touch', ['-m', '-d', `@${before.mtimeNs / 1_000_000_000n}.${String(before.mtimeNs % 1_000_000_000n).padStart(9, '0')}`, path])
    expect((await stat(path, { bigint: true })).mtimeNs).toBe(before.mtimeNs)
    answer = async () => 'not-the-recorded-hash'
    vi.setSystemTime(Date.now() + 61_000)
    await failing(3)
    expect(calls).toHaveLength(3)
    for (let i = 0; i < 100 && await w.env.cache.record('models', 'good.bin'); i++) await new Promise((ok) => setTimeout(ok, 10))
    expect(await w.env.cache.record('models', 'good.bin')).toBeNull()
  })
})
