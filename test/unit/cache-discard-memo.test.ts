// HeldPart.discard's memory of parts found intact: a hash that fails leaves no verdict (the next
// failing load checks again), and a verdict holds one minute only (a disk may change the bytes
// later without touching the file's metadata).
import { execFileSync } from 'node:child_process'
import { open, stat } from 'node:fs/promises'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { contractWorld } from '../helpers/contract'

const calls: string[] = []
let answer: (path: string) => Promise<string> = async () => { throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }) }
vi.mock('../../runtime/bindings/hash-file', () => ({
  hashFile: (path: string) => { calls.push(path); return answer(path) },
}))
const settled = async (n: number) => { for (let i = 0; i < 100 && calls.length < n; i++) await new Promise((ok) => setTimeout(ok, 5)); await new Promise((ok) => setTimeout(ok, 20)) }
const setSalt = (w: { env: { config: unknown } }, s: string) => { (w.env.config as { RESOURCE_KEY_SALT: string }).RESOURCE_KEY_SALT = s }
afterEach(() => { vi.useRealTimers() })

describe('the discard check remembers only what it saw, and not for long', () => {
  it('a hash that fails (EIO) is no verdict: the next failing load hashes again', async () => {
    calls.length = 0
    const w = await contractWorld()
    w.seed('good.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    setSalt(w, 'a-wrong-salt')
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await settled(1)
    expect(calls).toHaveLength(1)
    answer = async () => 'not-the-recorded-hash'
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await settled(2)
    expect(calls).toHaveLength(2)
  })

  it('a part found intact and corrupted later (inode, size and mtime unchanged) is checked again after a minute', async () => {
    calls.length = 0
    vi.useFakeTimers({ toFake: ['Date'] })
    const w = await contractWorld()
    w.seed('good.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    const recorded = (await w.env.cache.record('models', 'good.bin'))!.sha256
    const salt = w.env.config.RESOURCE_KEY_SALT as string
    answer = async () => recorded
    setSalt(w, 'a-wrong-salt')
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await settled(1)
    expect(calls).toHaveLength(1)
    setSalt(w, salt)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    // Bit rot: the bytes change, the inode, size and mtime do not.
    const path = w.env.cache.pathOf('models', 'good.bin')
    const before = await stat(path, { bigint: true })
    const fh = await open(path, 'r+')
    await fh.write(Buffer.alloc(64, 0xaa), 0, 64, Number(before.size) - 64)
    await fh.close()
    execFileSync('touch', ['-m', '-d', `@${before.mtimeNs / 1_000_000_000n}.${String(before.mtimeNs % 1_000_000_000n).padStart(9, '0')}`, path])
    expect((await stat(path, { bigint: true })).mtimeNs).toBe(before.mtimeNs)
    answer = async () => 'not-the-recorded-hash'
    // Within the minute: the verdict holds (no hash on every failing load)…
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await settled(2)
    expect(calls).toHaveLength(1)
    // …after it, the part is checked again, found changed and dropped.
    vi.setSystemTime(Date.now() + 61_000)
    expect((await w.req('/load/good.bin')).status).toBe(502)
    await settled(2)
    expect(calls).toHaveLength(2)
    for (let i = 0; i < 100 && await w.env.cache.record('models', 'good.bin'); i++) await new Promise((ok) => setTimeout(ok, 10))
    expect(await w.env.cache.record('models', 'good.bin')).toBeNull()
  })
})
