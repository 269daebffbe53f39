// Uploads against the built runtime under faults: descriptors after a failed big-part PUT, concurrent uploads of one name.
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { JWT_SECRET, post, startStack, type Stack } from '../helpers/stack'
import { startLoader } from '../helpers/spawn'
import { SALTS } from '../helpers/vectors'

const ADMIN = ['upload-admin@example.com', 'upload-admin-pass']
let s: Stack
beforeAll(async () => {
  s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'Admin'] })
})
afterAll(async () => s?.stop())

const login = async () => expect((await post(s.loader.url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
const upload = (name: string, data: Buffer) => fetch(`${s.loader.url}/upload/${name}`, {
  method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data),
})
const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex')

/** The loader process's open descriptors that point into its CACHE_DIR (deleted files included). */
function cacheFds(): string[] {
  const dir = `/proc/${s.loader.child.pid}/fd`
  return readdirSync(dir).flatMap((fd) => {
    try {
      const target = readlinkSync(join(dir, fd))
      return target.startsWith(s.loader.cacheDir) ? [target] : []
    } catch {
      return [] // closed while we looked
    }
  })
}

/** Waits until no descriptor points into CACHE_DIR (closing is asynchronous), or gives up and returns them. */
async function settledCacheFds(): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    if (cacheFds().length === 0) return []
    await new Promise((r) => setTimeout(r, 100))
  }
  return cacheFds()
}

describe('a failed big-part PUT', () => {
  it('leaves no descriptor open on the temporary file, whether the CDN cuts or refuses it', async () => {
    await login()
    expect(cacheFds()).toEqual([])
    s.faults.cutNextPutAfter = 1 << 20
    const cut = await upload('cut.bin', randomBytes(24 << 20))
    expect(cut.status).toBe(502)
    expect(await settledCacheFds()).toEqual([])

    s.faults.refuseNextPut = true
    const early = await upload('early.bin', randomBytes(24 << 20))
    expect(early.status).toBe(502)
    expect((await early.json()).detail).toMatch(/CDN refused/)
    expect(await settledCacheFds()).toEqual([])

    // moto itself, refusing a wrong uploader secret.
    s.setCdnYaml({ uploader: { accessKeyId: s.moto.uploader.accessKeyId, secretAccessKey: 'wrong-uploader-secret' } })
    try {
      await login()
      const refused = await upload('refused.bin', randomBytes(24 << 20))
      expect(refused.status).toBe(502)
      expect((await refused.json()).detail).toMatch(/CDN refused/)
      expect(await settledCacheFds()).toEqual([])
    } finally {
      s.setCdnYaml()
    }
    expect(readdirSync(join(s.loader.cacheDir, 'tmp')).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })
})

describe('concurrent uploads of one name', () => {
  it('are serialised: each answers 201 or 409, and every device then loads the last 201', async () => {
    await login()
    const datas = Array.from({ length: 4 }, () => randomBytes(8 << 20))
    const finished: { status: number; i: number }[] = []
    await Promise.all(datas.map((d, i) => upload('race.bin', d).then(async (r) => {
      await r.arrayBuffer()
      finished.push({ status: r.status, i })
    })))
    for (const f of finished) expect([201, 409]).toContain(f.status)
    const accepted = finished.filter((f) => f.status === 201)
    expect(accepted.length).toBeGreaterThan(0)
    const last = datas[accepted[accepted.length - 1].i]
    // Another device: a cold cache loads the big part from the CDN, the small part and manifest from the API.
    await s.restartLoader({ CACHE_DIR: `${s.loader.cacheDir}-other-device` })
    await login()
    const r = await post(s.loader.url, '/load/race.bin', {})
    expect(r.status).toBe(200)
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(last))
  })
})

/** Whether this machine lets a process mount a tmpfs in its own mount namespace (root, not in an unprivileged container). */
const canMountTmpfs = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /mnt'], { stdio: 'ignore' }).status === 0

describe('a full disk', () => {
  it.skipIf(!canMountTmpfs)('an upload larger than the free space answers 507 naming ENOSPC; the space is freed and the next upload goes through', async () => {
    // The loader alone sees a 6 MiB tmpfs as its CACHE_DIR: a real full disk, nobody else's.
    const full = await startLoader({ ...SALTS, RESOURCE_API_URL: s.originUrl, JWT_SECRET, LOGIN_RATE_PER_MINUTE: '1000' },
      { wrap: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=6m,mode=0700 tmpfs "$CACHE_DIR" && exec "$@"', 'sh'] })
    try {
      expect((await post(full.url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
      const r = await fetch(`${full.url}/upload/full.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(randomBytes(16 << 20)) })
      expect(r.status).toBe(507)
      const problem = await r.json()
      expect(problem).toMatchObject({ status: 507, code: 'ENOSPC', type: 'https://loader.local/problems/disk-full' })
      expect(problem.detail).toContain('ENOSPC')
      // The log is written asynchronously: wait for the line rather than read at once.
      for (let i = 0; i < 100 && !full.output().includes('ENOSPC'); i++) await new Promise((r) => setTimeout(r, 50))
      expect(full.output()).toContain('ENOSPC')
      // Nothing went upstream, and the temporary file is gone: a smaller upload fits again.
      expect(s.origin.files.has('models/full.bin.small')).toBe(false)
      const small = randomBytes(2 << 20)
      const ok = await fetch(`${full.url}/upload/fits.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(small) })
      expect(ok.status).toBe(201)
      expect((await ok.json()).sha256).toBe(sha(small))
    } finally {
      await full.stop('SIGKILL')
    }
  })
})
