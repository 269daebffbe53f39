// Fault injection on the load path (contract world: MSW for the Resource API and the CDN, the
// source functions in-process): what /status says about a download, the CDN socket after a local failure.
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { http, HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import { bigPartKey } from '../../functions/load/big-part'
import type { CacheRecord, PartialFile } from '../../shared/contract/cache'
import { seedChunked } from '../helpers/chunked-seed'
import { contractWorld } from '../helpers/contract'
import { CDN, firstPlainGet } from '../mocks/cdn'
import { server } from '../mocks/server'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('/status during a download', () => {
  it('an older upload (no manifest): bytesTotal is the size the CDN announced, never 0 under a growing bytesDone', async () => {
    const w = await contractWorld()
    const plain = w.seed('old.bin')
    expect((await w.login()).status).toBe(200)
    const obj = w.cdn.objects.get('models/old.bin.big')!
    let go!: () => void
    const resumed = new Promise<void>((r) => { go = r })
    server.use(firstPlainGet('models/old.bin.big', () => new HttpResponse(new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(obj.body.subarray(0, 1000)))
        void resumed.then(() => { c.enqueue(new Uint8Array(obj.body.subarray(1000))); c.close() })
      },
    }), { status: 200, headers: { etag: obj.etag, 'content-length': String(obj.body.length), ...obj.meta } })))
    const loading = w.req('/load/old.bin')
    let listed: { bytesDone: number; bytesTotal: number }[] = []
    for (let i = 0; i < 400 && !listed.some((d) => d.bytesDone >= 1000); i++) {
      listed = (await (await w.app.request('/status')).json()).downloads
      await new Promise((r) => setTimeout(r, 5))
    }
    go()
    expect(listed).toEqual([{ folder: 'models', filename: 'old.bin', bytesDone: 1000, bytesTotal: obj.body.length }])
    const r = await loading
    expect(r.status).toBe(200)
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(plain))
  })
})

describe('one writer per partial file', () => {
  it('a verified download never starts while a download-then-send of the same part runs (both would append to one partial file)', async () => {
    const w = await contractWorld()
    const { plain, small, big } = seedChunked(w, 'm.bin', 200_000, 16 * 1024)
    expect((await w.login()).status).toBe(200)
    const cache = w.env.cache
    // Claims open on each partial file, and the most ever open at once.
    const open = new Map<string, number>()
    let most = 0
    const ownPartial = cache.partial
    cache.partial = (folder, filename, smallSha) => {
      const p: PartialFile = ownPartial(folder, filename, smallSha)
      open.set(p.path, (open.get(p.path) ?? 0) + 1)
      most = Math.max(most, open.get(p.path)!)
      let closed = false
      const close = p.close
      p.close = () => {
        if (!closed) open.set(p.path, open.get(p.path)! - 1)
        closed = true
        close.call(p)
      }
      return p
    }
    // The part is evicted between the first load's look at the record and its own acquire (the first
    // record() answers a record), while the second load looks at the record once that load's
    // download-then-send has claimed the partial file (nothing there any more).
    const key = bigPartKey('models', 'm.bin', sha(small))
    const ownRecord = cache.record
    let calls = 0
    let second!: () => void
    const secondAsked = new Promise<void>((r) => { second = r })
    cache.record = async (folder, filename) => {
      const n = ++calls
      if (n === 1) {
        await secondAsked
        return { smallSha256: sha(small), bytes: big.length, sha256: sha(big), storedAt: new Date().toISOString() } satisfies CacheRecord
      }
      if (n === 2) {
        second()
        // Once that download has claimed the partial file.
        for (let i = 0; i < 2000 && !open.size; i++) await new Promise((r) => setTimeout(r, 1))
        expect(w.env.inflight.has(key)).toBe(true)
        return null
      }
      return ownRecord(folder, filename)
    }
    const [a, b] = await Promise.all([w.req('/load/m.bin'), w.req('/load/m.bin')])
    const bodies = await Promise.all([a, b].map(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) })))
    for (let i = 0; i < 1000 && w.env.downloads.list().length; i++) await new Promise((r) => setTimeout(r, 2))
    expect(calls).toBeGreaterThanOrEqual(2)
    expect(most).toBe(1)
    for (const r of bodies) {
      expect(r.status).toBe(200)
      expect(sha(r.body)).toBe(sha(plain))
    }
  })
})

describe('an older upload (no manifest, no x-amz-meta) and a CDN answering garbage once', () => {
  it('the garbage is not cached: 502 for that load, and the next load downloads again and answers the resource', async () => {
    const w = await contractWorld()
    const plain = w.seed('old.bin')
    expect((await w.login()).status).toBe(200)
    // Nothing on the CDN object says what its bytes should be (an upload older than manifests and metadata).
    const obj = w.cdn.objects.get('models/old.bin.big')!
    obj.meta = {}
    // A proxy or portal on the way answers 200 with a page of its own, once.
    const page = Buffer.from('<html><body>Please sign in to the network</body></html>'.padEnd(obj.body.length, ' '))
    server.use(firstPlainGet('models/old.bin.big', () => new HttpResponse(new Uint8Array(page), { status: 200, headers: { 'content-type': 'text/html' } })))
    const first = await w.req('/load/old.bin')
    expect(first.status).toBe(502)
    expect((await first.json()).type).toMatch(/decrypt-failed/)
    expect(await w.env.cache.record('models', 'old.bin')).toBeNull()
    // Nor left as a partial download.
    expect(readdirSync(join(w.cacheDir, 'tmp/partial'), { recursive: true }).filter((n) => String(n).endsWith('.part'))).toEqual([])
    const second = await w.req('/load/old.bin')
    expect(second.status).toBe(200)
    expect(sha(Buffer.from(await second.arrayBuffer()))).toBe(sha(plain))
  })
})

describe('a CDN that ignores Range', () => {
  it('a verified download cut after chunks were sent resumes from a 200 of the same version (bytes on disk dropped), not a cut', async () => {
    const w = await contractWorld()
    const { plain, big } = seedChunked(w, 'ign.bin', 300_000, 16 * 1024)
    expect((await w.login()).status).toBe(200)
    const obj = w.cdn.objects.get('models/ign.bin.big')!
    server.use(firstPlainGet('models/ign.bin.big', () => new HttpResponse(new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(big.subarray(0, 100_000)))
        setTimeout(() => c.error(new Error('connection reset')), 100)
      },
    }), { status: 200, headers: { etag: obj.etag, ...obj.meta } })))
    // Every resume: the whole object again, 200, the same ETag (a server or proxy that drops Range).
    const ranges: string[] = []
    server.use(http.get(`${CDN}/models/ign.bin.big`, ({ request }) => {
      const range = request.headers.get('range')
      if (!range) return undefined
      ranges.push(range)
      return new HttpResponse(new Uint8Array(big), { status: 200, headers: { etag: obj.etag, ...obj.meta } })
    }))
    const r = await w.req('/load/ign.bin')
    expect(r.status).toBe(200)
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(plain))
    expect(ranges).toHaveLength(1)
    // Committed once the whole-part hash (after the last byte went out) matches.
    for (let i = 0; i < 200 && !(await w.env.cache.record('models', 'ign.bin')); i++) await new Promise((ok) => setTimeout(ok, 10))
    expect(await w.env.cache.record('models', 'ign.bin')).toMatchObject({ sha256: sha(big) })
  })
})

describe('a cached big part corrupted on the disk', () => {
  it('its warm load answers 502 and drops it from the cache: the next load downloads it again', async () => {
    const w = await contractWorld()
    const plain = w.seed('rot.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/rot.bin')).status).toBe(200)
    // The last block of the cached part flipped on the disk (its size and record unchanged).
    const path = w.env.cache.pathOf('models', 'rot.bin')
    const bytes = readFileSync(path)
    bytes[bytes.length - 1] ^= 0xff
    writeFileSync(path, bytes)
    const bad = await w.req('/load/rot.bin')
    expect(bad.status).toBe(502)
    expect((await bad.json()).type).toMatch(/decrypt-failed/)
    // Checked (hashed) in the background, then dropped.
    for (let i = 0; i < 200 && existsSync(path); i++) await new Promise((ok) => setTimeout(ok, 10))
    expect(await w.env.cache.record('models', 'rot.bin')).toBeNull()
    expect(existsSync(path)).toBe(false)
    const again = await w.req('/load/rot.bin')
    expect(again.status).toBe(200)
    expect(sha(Buffer.from(await again.arrayBuffer()))).toBe(sha(plain))
    expect(existsSync(path)).toBe(true)
  })
})

describe('a cached big part that is intact but does not decrypt (a wrong key)', () => {
  it('answers 502 and stays cached: it is good again once the key is right', async () => {
    const w = await contractWorld()
    const plain = w.seed('good.bin')
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/good.bin')).status).toBe(200)
    const path = w.env.cache.pathOf('models', 'good.bin')
    const config = w.env.config as { RESOURCE_KEY_SALT: string }
    const right = config.RESOURCE_KEY_SALT
    config.RESOURCE_KEY_SALT = 'a-wrong-salt-for-this-device'
    expect((await w.req('/load/good.bin')).status).toBe(502)
    config.RESOURCE_KEY_SALT = right
    expect(existsSync(path)).toBe(true)
    w.cdn.calls.length = 0
    const r = await w.req('/load/good.bin')
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(plain))
    expect(w.cdn.calls).toEqual([])
  })
})

describe('the open-file limit reached', () => {
  it('a load whose cache look-up cannot open a file answers 507 problem+json naming the code, not 500', async () => {
    const w = await contractWorld()
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    const own = w.env.cache.acquire
    w.env.cache.acquire = async () => {
      throw Object.assign(new Error('EMFILE: too many open files, open \'/x/cache/models/m.bin.big\''), { code: 'EMFILE', errno: -24, syscall: 'open' })
    }
    const r = await w.req('/load/m.bin')
    w.env.cache.acquire = own
    expect(r.status).toBe(507)
    expect(r.headers.get('content-type')).toBe('application/problem+json')
    expect((await r.json()).detail).toMatch(/EMFILE/)
  })
})

describe('a follower of a failed verified download', () => {
  it('never sends bytes another download wrote into the partial file after the failure (a slow caller, then the object replaced on the CDN)', async () => {
    const CB = 256 * 1024
    const w = await contractWorld({ CDN_READ_RETRIES: '0', CDN_TIMEOUT_MS: '500' })
    const { plain, big } = seedChunked(w, 'm.bin', 16 * 1024 * 1024, CB)
    expect((await w.login()).status).toBe(200)
    const obj = w.cdn.objects.get('models/m.bin.big')!
    // The first download: one chunk, then 12 MiB at once (the caller's next read covers all of it),
    // then the body is cut and the download fails (no retry). (A cut, not a stall: MSW's socket
    // leaves unhandled rejections behind when a stalled mock body is destroyed by a timeout.)
    server.use(firstPlainGet('models/m.bin.big', () => new HttpResponse(new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(big.subarray(0, CB)))
        setTimeout(() => c.enqueue(new Uint8Array(big.subarray(CB, 12 * 1024 * 1024))), 100)
        setTimeout(() => c.error(new Error('cut')), 400)
      },
    }), { status: 200, headers: { etag: obj.etag, ...obj.meta } })))
    const slow = await w.req('/load/m.bin')
    expect(slow.status).toBe(200)
    const reader = slow.body!.getReader()
    const got: Buffer[] = [Buffer.from((await reader.read()).value!)]
    // The slow caller reads nothing more while the download fails...
    for (let i = 0; i < 500 && w.env.downloads.list().length; i++) await new Promise((r) => setTimeout(r, 5))
    expect(w.env.downloads.list()).toEqual([])
    // ... and the object is replaced by one with a chunk changed at 8 MiB, sent in small pieces: the
    // next load resumes (412: another version), starts again from zero over the same partial file and
    // writes the changed chunk's first pieces before its hash fails.
    const tampered = Buffer.from(big)
    tampered[8 * 1024 * 1024] ^= 0xff
    obj.body = tampered
    obj.etag = '"replaced"'
    server.use(http.get(`${CDN}/models/m.bin.big`, ({ request }) => {
      if (request.headers.get('range')) return undefined
      return new HttpResponse(new ReadableStream({
        start(c) {
          for (let i = 0; i < tampered.length; i += 4096) c.enqueue(new Uint8Array(tampered.subarray(i, i + 4096)))
          c.close()
        },
      }), { status: 200, headers: { etag: obj.etag, ...obj.meta } })
    }))
    const next = await w.req('/load/m.bin')
    await next.arrayBuffer().catch(() => {})
    for (let i = 0; i < 500 && w.env.downloads.list().length; i++) await new Promise((r) => setTimeout(r, 5))
    // The slow caller reads on: a prefix of the plaintext, then a cut; never another byte.
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        got.push(Buffer.from(value))
      }
    } catch { /* the cut */ }
    const body = Buffer.concat(got)
    expect(body.length).toBeLessThan(plain.length)
    let diff = -1
    for (let i = 0; i < body.length; i++) if (body[i] !== plain[i]) { diff = i; break }
    expect(diff).toBe(-1)
  })
})
