// Fault injection on the load path of the built runtime: a full disk before a verified download writes,
// a second loader started on a CACHE_DIR in use; the invariants after each.
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/spawn'
import { post, startStack, type Stack } from '../helpers/stack'
import { seedResource } from '../helpers/seed'
import { filesUnder } from '../helpers/tmp'
import { workWithTmpfs } from '../helpers/tmpfs'
import { eventually } from '../helpers/eventually'
import { SALTS } from '../helpers/vectors'

const USER = ['faults@example.com', 'faults-pass-1']
const MiB = 1024 * 1024
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

const disk = workWithTmpfs('loader-e2e-faults-', '8m', 'full-disk tests')
const { work, dir: tmpfsDir, mounted: canMount } = disk

let s: Stack
beforeAll(async () => {
  s = await startStack({ [USER[0]]: [USER[1], 'Admin'] }, { CACHE_DIR: join(work, 'cache-0'), CDN_TIMEOUT_MS: '30000' })
})
afterAll(async () => {
  await s?.stop()
  disk.remove()
})

const login = async () => expect((await post(s.loader.url, '/login', { email: USER[0], password: USER[1] })).status).toBe(200)
const load = (name: string) => post(s.loader.url, `/load/${name}`, { folder: 'models' })
const status = async () => (await fetch(`${s.loader.url}/status`)).json()

/** Stores a resource as an upload does; `chunkBytes` adds chunk hashes to the manifest (crypto.md §5c). */
async function seed(name: string, bytes: number, chunkBytes?: number): Promise<Buffer> {
  const plain = randomBytes(bytes)
  await seedResource(s, name, plain, { chunkBytes })
  return plain
}

/** Bytes waiting unread in the loader's connections to the CDN proxy (a response nobody reads). */
function cdnUnread(): number {
  const port = new URL(s.cdnUrl).port
  const out = spawnSync('ss', ['-tnpH', 'state', 'established', `dport = :${port}`], { encoding: 'utf8' }).stdout
  return out.split('\n').filter((l) => l.includes(`pid=${s.loader.child.pid},`)).reduce((n, l) => n + Number(l.trim().split(/\s+/)[0]), 0)
}

/** Every file under `dir`. */
const files = (dir: string) => filesUnder(dir).map((f) => f.path)

describe('a full disk', () => {
  it.skipIf(!canMount)('before a verified download writes its first byte: 507, nothing left on disk, and the CDN answer is not left unread on an open connection', async () => {
    const cacheDir = join(tmpfsDir, 'cache')
    // A CDN timeout far longer than the test: only the loader itself may close the connection.
    await s.restartLoader({ CACHE_DIR: cacheDir, CDN_TIMEOUT_MS: '600000' })
    await login()
    await seed('full.bin', 2 * MiB, 256 * 1024)
    const filler = join(tmpfsDir, 'filler')
    const block = Buffer.alloc(4096)
    for (;;) { try { writeFileSync(filler, block, { flag: 'a' }) } catch { break } }
    try {
      const r = await load('full.bin')
      expect(r.status).toBe(507)
      expect((await r.json()).detail).toMatch(/disk is full \(ENOSPC\)/)
      expect(files(join(cacheDir, 'tmp')).concat(files(join(cacheDir, 'cache')))).toEqual([])
      expect(await eventually(() => cdnUnread() === 0)).toBe(true)
    } finally {
      rmSync(filler, { force: true })
    }
    const again = await load('full.bin')
    expect(again.status).toBe(200)
    await again.arrayBuffer()
    await s.restartLoader({ CACHE_DIR: join(work, 'cache-1') })
  })
})

describe('a second loader on the same CACHE_DIR', () => {
  it('stops before its start-up clean-up or eviction touches the first one\'s files', async () => {
    await s.restartLoader({ CACHE_DIR: join(work, 'cache-shared') })
    const dir = s.loader.cacheDir
    await login()
    const plain = await seed('kept.bin', MiB)
    const warm = await load('kept.bin')
    expect(sha(Buffer.from(await warm.arrayBuffer()))).toBe(sha(plain))
    await eventually(async () => (await status()).downloads.length === 0)
    const part = join(dir, 'cache/models/kept.bin.big')
    expect(existsSync(part)).toBe(true)
    // What the first loader may have in progress at any time: an upload's ciphertext temporary, a
    // record being written, a part renamed into place whose record is not written yet.
    const inProgress = [
      join(dir, 'tmp', `upload-${s.loader.child.pid}-0123456789ab.tmp`),
      join(dir, 'cache/models/kept.bin.big.json.0123abcd.tmp'),
      join(dir, 'cache/models/landing.bin.big'),
    ]
    for (const f of inProgress) writeFileSync(f, 'in progress')
    // A bound of 0 bytes: its eviction pass, if it ran, would remove every cached part.
    const second = spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
      env: { PATH: process.env.PATH, ...SALTS, PORT: '0', CACHE_DIR: dir, CACHE_MAX_BYTES: '0' }, encoding: 'utf8', timeout: 15_000,
    })
    expect(second.status).toBe(1)
    expect(second.stderr).toMatch(/is in use by another loader/)
    expect([part, ...inProgress].filter((f) => !existsSync(f))).toEqual([])
    s.faults.ranges = []
    const again = await load('kept.bin')
    expect(sha(Buffer.from(await again.arrayBuffer()))).toBe(sha(plain))
    expect(s.faults.ranges).toEqual([])
  })
})
