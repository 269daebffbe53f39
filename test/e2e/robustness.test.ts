// Robustness of the built runtime at the edges (issue 13): LRU eviction under concurrent loads, a part
// larger than the cache bound, a full disk during a cold load, a CDN that stalls, a client that stalls.
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readlinkSync } from 'node:fs'
import { request, type IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post, startStack, type Stack } from '../helpers/stack'
import { seedResource } from '../helpers/seed'
import { filesUnder } from '../helpers/tmp'
import { workWithTmpfs } from '../helpers/tmpfs'
import { eventually } from '../helpers/eventually'

const USER = ['robust@example.com', 'robust-pass-1']
const MiB = 1024 * 1024
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Chunk size of the manifests `seed` writes when `verified` is set. */
let chunkBytes = 256 * 1024
/** Whether `seed` writes a manifest with chunk hashes (the tests below run without, then with). */
let verified = false

// A small tmpfs stands for a full disk; mounting needs root (skipped with the reason otherwise).
const disk = workWithTmpfs('loader-e2e-robust-', '8m', 'ENOSPC test')
const { work, dir: tmpfsDir, mounted: canMount } = disk

let s: Stack
let n = 0
/** A fresh CACHE_DIR under this file's work folder (removed at the end). */
const freshDir = () => join(work, `cache-${n++}`)

beforeAll(async () => {
  s = await startStack({ [USER[0]]: [USER[1], 'Admin'] }, { CACHE_DIR: freshDir() })
})
afterAll(async () => {
  await s?.stop()
  disk.remove()
})

const login = async () => expect((await post(s.loader.url, '/login', { email: USER[0], password: USER[1] })).status).toBe(200)
const load = (name: string) => post(s.loader.url, `/load/${name}`, { folder: 'models' })
/** Until no download runs: a verified download (crypto.md §5c) commits after its callers' last byte. */
async function idle(): Promise<void> {
  for (let i = 0; i < 400 && (await (await fetch(`${s.loader.url}/status`)).json()).downloads.length; i++) await sleep(25)
}

/** Stores a resource the way an upload does (big part with x-amz-meta on the CDN, small part on the API); returns the plaintext. */
async function seed(name: string, bytes: number): Promise<Buffer> {
  const plain = randomBytes(bytes)
  // With chunk hashes (crypto.md §5c) cold loads take the verified streaming path.
  await seedResource(s, name, plain, verified ? { chunkBytes } : { manifest: false })
  return plain
}

/** Every file under `dir` with its size. */
const files = filesUnder
/** Bytes of big parts and partial downloads in a CACHE_DIR. */
const cacheBytes = (dir: string) => files(dir).filter((f) => f.path.endsWith('.big') || f.path.endsWith('.big.part')).reduce((t, f) => t + f.bytes, 0)

/** Descriptors the loader holds open on cached big parts (Linux /proc). */
function openBigParts(pid: number): string[] {
  const dir = `/proc/${pid}/fd`
  const out: string[] = []
  for (const fd of readdirSync(dir)) {
    try {
      const target = readlinkSync(join(dir, fd))
      if (/\.big( \(deleted\))?$|\.big\.part/.test(target)) out.push(target)
    } catch { /* closed meanwhile */ }
  }
  return out
}

// Each twice: the download-then-send path (no chunk hashes), then verified streaming (crypto.md §5c).
describe.each([false, true])('chunk hashes in the manifest: %s', (withChunks) => {
  beforeAll(() => { verified = withChunks })
  afterAll(() => { verified = false })

  describe('the big-part cache under a small CACHE_MAX_BYTES', () => {
    it('concurrent loads of several resources evicting one another all answer 200 with the right bytes', async () => {
      const bound = Math.floor(1.5 * MiB)
      await s.restartLoader({ CACHE_DIR: freshDir(), CACHE_MAX_BYTES: String(bound), MAX_CONCURRENT_TRANSFERS: '64' })
      await login()
      const names = ['lru-a.bin', 'lru-b.bin', 'lru-c.bin', 'lru-d.bin']
      const plains = new Map<string, string>()
      for (const name of names) plains.set(name, sha(await seed(name, MiB)))
      const got: string[] = []
      for (let round = 0; round < 4; round++) {
        const batch = names.flatMap((name) => [name, name, name])
        const rs = await Promise.all(batch.map(async (name) => {
          const r = await load(name)
          const body = Buffer.from(await r.arrayBuffer())
          return r.status === 200 && sha(body) === plains.get(name) ? 'ok' : `${name}: ${r.status} ${r.status === 200 ? 'wrong bytes' : body.toString('utf8').slice(0, 200)}`
        }))
        got.push(...rs.filter((x) => x !== 'ok'))
      }
      expect(got).toEqual([])
      await idle()
      expect(s.loader.child.exitCode).toBeNull()
      expect(s.loader.output()).not.toMatch(/unhandled|vanished/i)
      // Once no request reads, the cache is back under its bound and no descriptor stays open.
      expect(await eventually(() => cacheBytes(s.loader.cacheDir) <= bound)).toBe(true)
      expect(await eventually(() => openBigParts(s.loader.child.pid!).length === 0)).toBe(true)
    })

    it('a part larger than the whole bound is served (every time), then evicted', async () => {
      await s.restartLoader({ CACHE_DIR: freshDir(), CACHE_MAX_BYTES: String(512 * 1024) })
      await login()
      const plain = await seed('huge.bin', 3 * MiB)
      for (let i = 0; i < 2; i++) {
        s.faults.ranges = []
        const r = await load('huge.bin')
        expect(r.status).toBe(200)
        expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(plain))
        await idle()
        expect(s.faults.ranges).toEqual([undefined])
        expect(await eventually(() => !files(s.loader.cacheDir).some((f) => f.path.endsWith('huge.bin.big')))).toBe(true)
      }
    })
  })

  describe('loads sharing one cold download', () => {
  it('a client that leaves after its first chunk does not cut off the others', async () => {
    await s.restartLoader({ CACHE_DIR: freshDir(), MAX_CONCURRENT_TRANSFERS: '8' })
    await login()
    const plain = await seed('shared.bin', 24 * MiB)
    s.faults.ranges = []
    let left!: () => void
    const hasLeft = new Promise<void>((r) => { left = r })
    /** One client: `leave` drops the connection after the first chunk; the others wait for that, then read all. */
    const client = (leave: boolean) => new Promise<string>((done) => {
      const req = request(`${s.loader.url}/load/shared.bin`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        const h = createHash('sha256')
        let first = true
        res.on('data', (c: Buffer) => {
          h.update(c)
          if (!first) return
          first = false
          if (leave) {
            req.destroy()
            left()
            return done('left')
          }
          res.pause()
          // Resumed once the leaving client is gone and the loader has seen it close.
          void hasLeft.then(() => sleep(500)).then(() => res.resume())
        })
        res.on('end', () => done(`${res.statusCode} ${h.digest('hex')}`))
        res.on('close', () => { if (!res.complete) done(leave ? 'left' : `cut (${res.statusCode})`) })
      })
      req.on('error', (e) => done(leave ? 'left' : `error ${e.message}`))
      req.end(JSON.stringify({ folder: 'models' }))
    })
    const got = await Promise.all([client(false), client(true), client(false)])
    expect(got).toEqual([`200 ${sha(plain)}`, 'left', `200 ${sha(plain)}`])
    // The three shared one download.
    expect(s.faults.ranges).toEqual([undefined])
    expect(s.loader.child.exitCode).toBeNull()
    expect(await eventually(() => openBigParts(s.loader.child.pid!).length === 0)).toBe(true)
  })
})

describe('a full disk during a cold load', () => {
    it.skipIf(!canMount)('answers 507, logs ENOSPC, removes the partial file; the loader keeps serving; a read-only cache is 507 EROFS', async () => {
      // CACHE_DIR inside the mount, so removing it after the test never touches the mount point.
      const cacheDir = join(tmpfsDir, 'cache')
      await s.restartLoader({ CACHE_DIR: cacheDir })
      await login()
      // One chunk for the whole part: a verified download has sent nothing when the disk fills, so
      // the caller still gets the problem (past the first chunk, a failure can only cut the body).
      chunkBytes = 16 * MiB
      await seed('full.bin', 12 * MiB)
      chunkBytes = 256 * 1024
      const small = await seed('fits.bin', MiB)
      s.faults.ranges = []
      const r = await load('full.bin')
      expect(r.status).toBe(507)
      expect(r.headers.get('content-type')).toBe('application/problem+json')
      expect((await r.json()).detail).toMatch(/disk is full \(ENOSPC\)/)
      expect(s.faults.ranges).toEqual([undefined])
      expect(s.loader.output()).toMatch(/ENOSPC/)
      expect(files(join(cacheDir, 'tmp/partial')).filter((f) => f.path.endsWith('.part'))).toEqual([])
      expect(s.loader.child.exitCode).toBeNull()
      const ok = await load('fits.bin')
      expect(ok.status).toBe(200)
      expect(sha(Buffer.from(await ok.arrayBuffer()))).toBe(sha(small))
      await idle()
      // A cache that cannot be written at all (read-only volume) is a 507 that names the code, not a CDN failure.
      await seed('readonly.bin', MiB)
      expect(spawnSync('mount', ['-o', 'remount,ro', tmpfsDir]).status).toBe(0)
      try {
        const ro = await load('readonly.bin')
        expect(ro.status).toBe(507)
        expect((await ro.json()).detail).toMatch(/cannot be written \(EROFS\)/)
        const warm = await load('fits.bin')
        expect(warm.status).toBe(200)
        await warm.arrayBuffer()
      } finally {
        spawnSync('mount', ['-o', 'remount,rw', tmpfsDir])
      }
      expect(s.loader.child.exitCode).toBeNull()
      await s.restartLoader({ CACHE_DIR: freshDir() })
    })
  })
})

describe('stalled upstreams and clients', () => {
  it('a CDN that stalls mid-body every time ends in 504, after resuming once per retry', async () => {
    await s.restartLoader({ CACHE_DIR: freshDir(), CDN_TIMEOUT_MS: '500', CDN_READ_RETRIES: '1' })
    await login()
    await seed('stall.bin', 2 * MiB)
    s.faults.ranges = []
    s.faults.stallEveryBigGetAfter = 256 * 1024
    try {
      const r = await load('stall.bin')
      expect(r.status).toBe(504)
      expect((await r.json()).detail).toMatch(/the CDN did not answer .* in time/)
      expect(s.faults.ranges.length).toBe(2)
      expect(s.faults.ranges[1]).toMatch(/^bytes=\d+-$/)
    } finally {
      s.faults.stallEveryBigGetAfter = undefined
    }
  })

  it('CDN_READ_RETRIES=0 means one attempt', async () => {
    await s.restartLoader({ CACHE_DIR: freshDir(), CDN_TIMEOUT_MS: '500', CDN_READ_RETRIES: '0' })
    await login()
    await seed('once.bin', MiB)
    s.faults.ranges = []
    s.faults.stallEveryBigGetAfter = 1024
    try {
      const r = await load('once.bin')
      expect(s.faults.ranges).toEqual([undefined])
      expect(r.status).toBe(504)
    } finally {
      s.faults.stallEveryBigGetAfter = undefined
    }
  })

  it('a client that stops reading a load loses it after CLIENT_STALL_TIMEOUT_MS: its slot and cache file are freed', async () => {
    await s.restartLoader({ CACHE_DIR: freshDir(), CLIENT_STALL_TIMEOUT_MS: '1000', MAX_CONCURRENT_TRANSFERS: '1' })
    await login()
    const plain = await seed('slow-reader.bin', 32 * MiB)
    const warm = await load('slow-reader.bin')
    expect(sha(Buffer.from(await warm.arrayBuffer()))).toBe(sha(plain))
    // A client that reads the headers, then nothing: more than the socket buffers can hold is pending.
    let stalled: IncomingMessage | undefined
    const ended = new Promise<string>((ok) => {
      const req = request(`${s.loader.url}/load/slow-reader.bin`, { method: 'POST' }, (res) => {
        stalled = res
        res.pause()
        res.once('close', () => ok(res.complete ? 'complete' : 'cut'))
      })
      req.once('error', () => ok('cut'))
      req.end()
    })
    expect(await eventually(() => stalled !== undefined)).toBe(true)
    expect(stalled!.statusCode).toBe(200)
    // The slot is free again once the stalled response was ended: the next load is served.
    let status = 0
    expect(await eventually(async () => {
      const r = await load('slow-reader.bin')
      status = r.status
      if (r.status === 200) expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(plain))
      else await r.arrayBuffer()
      return r.status === 200
    }, 30_000)).toBe(true)
    expect(status).toBe(200)
    stalled!.resume()
    expect(await ended).toBe('cut')
    expect(await eventually(() => openBigParts(s.loader.child.pid!).length === 0)).toBe(true)
    expect(s.loader.output()).toMatch(/stopped reading/)
  })

  /** Sends an upload's headers and `bytes` bytes of its body, then nothing; resolves with the raw answer once the loader closes. */
  function stalledUpload(url: string, head: string, bytes: number, framing: (b: Buffer) => Buffer = (b) => b): Promise<string> {
    const { hostname, port } = new URL(url)
    return new Promise((ok, ko) => {
      const sock = connect(Number(port), hostname)
      let out = ''
      sock.on('data', (d) => { out += d.toString('latin1') })
      sock.on('error', () => {})
      sock.on('close', () => ok(out))
      setTimeout(() => { sock.destroy(); ko(new Error(`no answer to a stalled upload: ${out}`)) }, 20_000).unref()
      sock.write(head)
      sock.write(framing(Buffer.alloc(bytes, 7)))
    })
  }
  const chunked = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')])

  for (const [label, cdnTimeout] of [['the body timer fires first', '30000'], ['the CDN PUT times out first', '500']] as const) {
    it(`a client that stops sending a one-pass upload body gets a 408 upload-stalled (${label}), and its slot is freed`, async () => {
      await s.restartLoader({ CACHE_DIR: freshDir(), CLIENT_STALL_TIMEOUT_MS: '1000', CDN_TIMEOUT_MS: cdnTimeout, MAX_CONCURRENT_TRANSFERS: '1' })
      await login()
      const answer = await stalledUpload(s.loader.url,
        `POST /upload/stalled.bin?folder=models HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: ${2 * MiB}\r\n\r\n`, 300 * 1024)
      expect(answer).toMatch(/^HTTP\/1\.1 408 /)
      expect(answer).toMatch(/upload-stalled/)
      const r = await fetch(`${s.loader.url}/upload/after.bin?folder=models`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(1000) })
      expect(r.status).toBe(201)
    })
  }

  it('a client that stops sending a multipart upload body gets a 408 upload-stalled, and its slot is freed', async () => {
    await s.restartLoader({ CACHE_DIR: freshDir(), CLIENT_STALL_TIMEOUT_MS: '1000', MAX_CONCURRENT_TRANSFERS: '1' })
    await login()
    const part = Buffer.from('--XX\r\nContent-Disposition: form-data; name="data"; filename="a"\r\n\r\n')
    const answer = await stalledUpload(s.loader.url,
      `POST /upload/stalled-mp.bin?folder=models HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(part).toString('latin1')}`,
      300 * 1024, chunked)
    expect(answer).toMatch(/^HTTP\/1\.1 408 /)
    expect(answer).toMatch(/upload-stalled/)
    const r = await fetch(`${s.loader.url}/upload/after-mp.bin?folder=models`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(1000) })
    expect(r.status).toBe(201)
  })
})
