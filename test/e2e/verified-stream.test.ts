// Verified streaming (crypto.md §5c) end to end: chunk hashes in the manifest, plaintext sent chunk by
// chunk as each is verified, a tampered chunk cuts the response, one shared download, resumes
// re-hash, and prefetch (http.md) fills the cache so the next load is warm.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeManifest } from '../../shared/crypto/manifest'
import { smallSizeOf } from '../../functions/upload/split'
import { opensslEncrypt } from '../helpers/openssl'
import { post, RESOURCE_AES, startStack, type Stack } from '../helpers/stack'
import { drain } from '../helpers/drain'

const ADMIN = ['stream-admin@example.com', 'stream-admin-pass']
const MiB = 1024 * 1024
const CB = 4 * MiB
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let s: Stack
beforeAll(async () => { s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'Admin'] }, { CDN_TIMEOUT_MS: '4000', CDN_READ_RETRIES: '2' }) })
afterAll(async () => s?.stop())

const login = async () => expect((await post(s.loader.url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
const load = (name: string) => post(s.loader.url, `/load/${name}`, { folder: 'models' })
const status = async () => (await fetch(`${s.loader.url}/status`)).json()
const bigUrl = (name: string) => `${s.moto.url}/models/${name}.big`
const cached = (name: string) => existsSync(join(s.loader.cacheDir, 'cache/models', `${name}.big`))
/** Waits until no download is in progress (a verified download commits after its callers' last byte). */
async function idle() {
  for (let i = 0; i < 400 && (await status()).downloads.length; i++) await new Promise((r) => setTimeout(r, 25))
  expect((await status()).downloads).toEqual([])
}
/** The partial file of `name` (under the SHA-256 of its small part), or where it would be when there is none. */
function partialPath(name: string): string {
  const root = join(s.loader.cacheDir, 'tmp/partial/models')
  const keys = existsSync(root) ? readdirSync(root) : []
  const key = keys.find((k) => existsSync(join(root, k, `${name}.big.part`)))
  return join(root, key ?? 'none', `${name}.big.part`)
}

/** Puts a big part on the CDN with the uploader keys, straight to moto (the attacker keeps the x-amz-meta headers). */
async function putBig(name: string, big: Buffer, meta: { sha256: string; small: string }) {
  const r = await s.s3.fetch(bigUrl(name), { method: 'PUT', body: new Uint8Array(big),
    headers: { 'x-amz-content-sha256': sha(big), 'x-amz-meta-sha256': meta.sha256, 'x-amz-meta-small-sha256': meta.small } })
  expect(r.status).toBe(200)
}

/** Seeds a resource as a chunk-hashing uploader would: big part on the CDN, manifest with chunks and small part at the API. */
async function seed(name: string, plain: Buffer, withChunks = true) {
  const blob = opensslEncrypt(RESOURCE_AES.toString('hex'), randomBytes(16).toString('hex'), plain)
  const n = smallSizeOf(blob.length)
  const small = blob.subarray(0, n)
  const big = Buffer.from(blob.subarray(n))
  const chunks: string[] = []
  for (let i = 0; i < big.length; i += CB) chunks.push(sha(big.subarray(i, i + CB)))
  await putBig(name, big, { sha256: sha(big), small: sha(small) })
  s.origin.files.set(`models/${name}.manifest`, encodeManifest({ v: 1, bytes: plain.length, blobBytes: blob.length, smallBytes: n,
    sha256Big: sha(big), sha256Small: sha(small), sha256Plain: sha(plain), ...(withChunks ? { chunkBytes: CB, chunks } : {}) }))
  s.origin.files.set(`models/${name}.small`, Buffer.from(small))
  return { small, big, meta: { sha256: sha(big), small: sha(small) } }
}

/** The plaintext a caller may have once `chunks` chunks are verified: small || chunks, less the IV and the block kept for the padding check. */
const verifiedPlain = (smallBytes: number, chunks: number) => Math.floor((smallBytes + chunks * CB - 16) / 16) * 16 - 16

/** Reads at least `n` bytes of a body (or until it ends); the reader stays open for the rest. */
async function readAtLeast(reader: ReadableStreamDefaultReader<Uint8Array>, n: number, parts: Buffer[]): Promise<number> {
  let have = parts.reduce((a, b) => a + b.length, 0)
  while (have < n) {
    const { value, done } = await reader.read()
    if (done) break
    parts.push(Buffer.from(value))
    have += value.length
  }
  return have
}

describe('verified streaming (crypto.md §5c)', () => {
  it('upload writes one SHA-256 per 4 MiB chunk of the big part, still "v":1', async () => {
    await login()
    const data = randomBytes(9 * MiB)
    const r = await fetch(`${s.loader.url}/upload/up.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) })
    expect(r.status).toBe(201)
    const m = JSON.parse(s.origin.files.get('models/up.bin.manifest')!.toString())
    const big = Buffer.from(await (await s.s3.fetch(bigUrl('up.bin'))).arrayBuffer())
    expect(m.v).toBe(1)
    expect(m.chunkBytes).toBe(CB)
    expect(m.chunks).toEqual([sha(big.subarray(0, CB)), sha(big.subarray(CB, 2 * CB)), sha(big.subarray(2 * CB))])
  })

  it('a big part tampered in its middle chunk: exactly the verified prefix, then a cut; nothing cached; the next load downloads again', async () => {
    await login()
    const plain = randomBytes(10 * MiB)
    const { small, big, meta } = await seed('mid.bin', plain)
    const bad = Buffer.from(big)
    bad[CB + CB / 2] ^= 0x5a
    await putBig('mid.bin', bad, meta)
    s.faults.ranges = []
    const r = await load('mid.bin')
    expect(r.status).toBe(200)
    expect(r.headers.get('content-length')).toBe(String(plain.length))
    const { got, cut } = await drain(r)
    expect(cut).toBe(true)
    expect(got.length).toBe(verifiedPlain(small.length, 1))
    expect(got.equals(plain.subarray(0, got.length))).toBe(true)
    expect(cached('mid.bin')).toBe(false)
    expect(existsSync(partialPath('mid.bin')) ? statSync(partialPath('mid.bin')).size : 0).toBe(0)
    // The log line may reach the test a moment after the cut.
    await expect.poll(() => s.loader.output()).toMatch(/failed its integrity check/)
    // The CDN copy is repaired: the next load downloads again and gets every byte.
    await putBig('mid.bin', big, meta)
    const again = await load('mid.bin')
    expect(Buffer.from(await again.arrayBuffer()).equals(plain)).toBe(true)
    expect(s.faults.ranges).toEqual([undefined, undefined])
    await idle()
    expect(cached('mid.bin')).toBe(true)
  })

  it('x-amz-meta-sha256 rewritten to match a tampered part: 502 before any byte', async () => {
    await login()
    const plain = randomBytes(5 * MiB)
    const { big, meta } = await seed('hdr.bin', plain)
    const bad = Buffer.from(big)
    bad[100] ^= 1
    await putBig('hdr.bin', bad, { ...meta, sha256: sha(bad) })
    const r = await load('hdr.bin')
    expect(r.status).toBe(502)
    expect((await r.json()).type).toMatch(/integrity/)
    expect(cached('hdr.bin')).toBe(false)
  })

  it('every chunk verified but sha256Big different (an inconsistent manifest): nothing is cached', async () => {
    await login()
    const plain = randomBytes(5 * MiB)
    const { big, meta } = await seed('whole.bin', plain)
    // No x-amz-meta-sha256 on the object, and a manifest whose sha256Big is not the part's.
    const r0 = await s.s3.fetch(bigUrl('whole.bin'), { method: 'PUT', body: new Uint8Array(big), headers: { 'x-amz-content-sha256': sha(big), 'x-amz-meta-small-sha256': meta.small } })
    expect(r0.status).toBe(200)
    const m = JSON.parse(s.origin.files.get('models/whole.bin.manifest')!.toString())
    s.origin.files.set('models/whole.bin.manifest', encodeManifest({ ...m, sha256Big: sha(Buffer.from('not the big part')) }))
    const r = await load('whole.bin')
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    await idle()
    expect(cached('whole.bin')).toBe(false)
    await expect.poll(() => s.loader.output()).toMatch(/sha256Big does not match/)
  })

  it('a manifest whose bytes disagree with the padding: the response ends abruptly, never a byte past Content-Length', async () => {
    await login()
    const plain = randomBytes(5 * MiB + 5)
    await seed('len.bin', plain)
    // One byte less still fits blobBytes by the padding rule, so it passes the check before the first byte.
    const m = JSON.parse(s.origin.files.get('models/len.bin.manifest')!.toString())
    s.origin.files.set('models/len.bin.manifest', encodeManifest({ ...m, bytes: plain.length - 1 }))
    const r = await load('len.bin')
    expect(r.headers.get('content-length')).toBe(String(plain.length - 1))
    const { got, cut } = await drain(r)
    expect(cut).toBe(true)
    expect(got.length).toBeLessThan(plain.length - 1)
    expect(got.equals(plain.subarray(0, got.length))).toBe(true)
  })

  it('the first chunks reach every caller while the CDN body is stalled; concurrent cold loads share one download', async () => {
    await login()
    const plain = randomBytes(12 * MiB + 12345)
    const { small } = await seed('stall.bin', plain)
    s.faults.ranges = []
    s.faults.stallNextBigGetAfter = 2 * CB + 100_000
    const responses = await Promise.all([load('stall.bin'), load('stall.bin'), load('stall.bin')])
    const want = verifiedPlain(small.length, 2)
    const readers = responses.map((r) => ({ reader: r.body!.getReader(), parts: [] as Buffer[] }))
    for (const { reader, parts } of readers) expect(await readAtLeast(reader, want, parts)).toBeGreaterThanOrEqual(want)
    // Every caller holds two chunks' plaintext while the only CDN GET is still stalled.
    expect(s.faults.ranges).toEqual([undefined])
    // A late joiner reads the verified prefix back from the partial file, and a caller that hangs up changes nothing for the others.
    const late = await load('stall.bin')
    readers.push({ reader: late.body!.getReader(), parts: [] })
    expect(await readAtLeast(readers[3].reader, want, readers[3].parts)).toBeGreaterThanOrEqual(want)
    expect(s.faults.ranges).toEqual([undefined])
    await readers[0].reader.cancel()
    readers.shift()
    const st = await status()
    expect(st.downloads).toEqual([{ folder: 'models', filename: 'stall.bin', bytesDone: 2 * CB + 100_000, bytesTotal: plain.length + 16 + 16 - (plain.length % 16) - small.length }])
    for (const { reader, parts } of readers) {
      await readAtLeast(reader, Infinity, parts)
      expect(Buffer.concat(parts).equals(plain)).toBe(true)
    }
    // The stall ended in one resumed request for all three callers.
    expect(s.faults.ranges).toEqual([undefined, `bytes=${2 * CB + 100_000}-`])
    await idle()
    expect(cached('stall.bin')).toBe(true)
  })

  it('a caller still reading when the download commits keeps the part held until its last byte, then lets it go', async () => {
    await login()
    const plain = randomBytes(40 * MiB)
    await seed('slow.bin', plain)
    const r = await load('slow.bin')
    expect(r.status).toBe(200)
    const reader = r.body!.getReader()
    const parts: Buffer[] = []
    await readAtLeast(reader, 1, parts)
    // The caller pauses; the download goes on and commits while it is still attached.
    await idle()
    expect(cached('slow.bin')).toBe(true)
    await readAtLeast(reader, Infinity, parts)
    expect(Buffer.concat(parts).equals(plain)).toBe(true)
    // Its hold ends with its response: no descriptor stays open on a cached part.
    const openParts = () => readdirSync(`/proc/${s.loader.child.pid}/fd`).filter((fd) => {
      try { return /\.big( \(deleted\))?$/.test(readlinkSync(`/proc/${s.loader.child.pid}/fd/${fd}`)) } catch { return false }
    })
    await expect.poll(openParts).toEqual([])
  })

  it('a resumed download re-hashes the chunks already on disk: a corrupted one restarts from zero', async () => {
    await login()
    const plain = randomBytes(10 * MiB)
    await seed('rehash.bin', plain)
    s.faults.ranges = []
    s.faults.stallNextBigGetAfter = CB + 200_000
    const pending = load('rehash.bin').then((r) => r.arrayBuffer()).catch(() => null)
    const part = () => partialPath('rehash.bin')
    for (let i = 0; i < 400 && !(existsSync(part()) && statSync(part()).size >= CB + 200_000); i++) await new Promise((r) => setTimeout(r, 25))
    await s.loader.stop('SIGKILL')
    await pending
    // The disk flips a bit of the first chunk while the loader is down.
    const onDisk = readFileSync(part())
    expect(onDisk.length).toBe(CB + 200_000)
    onDisk[10] ^= 1
    writeFileSync(part(), onDisk)
    await s.restartLoader()
    await login()
    const r = await load('rehash.bin')
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    expect(s.faults.ranges).toEqual([undefined, undefined])
    expect(s.loader.output()).toMatch(/failed its hash; starting from zero/)
  })

  it('a resumed download of intact chunks continues with Range after a restart', async () => {
    await login()
    const plain = randomBytes(10 * MiB)
    await seed('resume2.bin', plain)
    s.faults.ranges = []
    s.faults.stallNextBigGetAfter = CB + 300_000
    const pending = load('resume2.bin').then((r) => r.arrayBuffer()).catch(() => null)
    const part = () => partialPath('resume2.bin')
    for (let i = 0; i < 400 && !(existsSync(part()) && statSync(part()).size >= CB + 300_000); i++) await new Promise((r) => setTimeout(r, 25))
    await s.loader.stop('SIGKILL')
    await pending
    await s.restartLoader()
    await login()
    const r = await load('resume2.bin')
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    expect(s.faults.ranges).toEqual([undefined, `bytes=${CB + 300_000}-`])
  })

  it('prefetch: the licence check, the big part into the cache in the background; the next load is warm', async () => {
    await login()
    const plain = randomBytes(6 * MiB)
    await seed('pre.bin', plain)
    s.origin.calls.length = 0
    s.faults.ranges = []
    const r = await post(s.loader.url, '/prefetch/pre.bin', { folder: 'models' })
    expect(r.status).toBe(202)
    expect(await r.json()).toEqual({ folder: 'models', filename: 'pre.bin', state: 'downloading' })
    expect(s.origin.calls.map((c) => c.path)).toEqual(['/resources/get/models', '/resources/get/models'])
    await idle()
    const st = await status()
    expect(st.cache.entries).toBeGreaterThanOrEqual(1)
    expect(st.cache.bytes).toBeGreaterThanOrEqual(6 * MiB + 32 - 3072)
    expect(st.cache.maxBytes).toBe(32 * 1024 ** 3)
    expect(s.faults.ranges).toEqual([undefined])
    // Warm: one API call (the small part), no CDN GET.
    s.origin.calls.length = 0
    const again = await post(s.loader.url, '/prefetch/pre.bin', { folder: 'models' })
    expect(await again.json()).toEqual({ folder: 'models', filename: 'pre.bin', state: 'cached' })
    s.origin.calls.length = 0
    const l = await load('pre.bin')
    expect(Buffer.from(await l.arrayBuffer()).equals(plain)).toBe(true)
    expect(s.origin.calls).toEqual([{ method: 'POST', path: '/resources/get/models' }])
    expect(s.faults.ranges).toEqual([undefined])
  })

  it('prefetch of a resource whose manifest has no chunk hashes: downloaded whole in the background, listed while it runs', async () => {
    await login()
    const plain = randomBytes(6 * MiB)
    await seed('old-pre.bin', plain, false)
    s.faults.ranges = []
    s.faults.stallNextBigGetAfter = 1_000_000
    const r = await post(s.loader.url, '/prefetch/old-pre.bin', { folder: 'models' })
    expect(await r.json()).toEqual({ folder: 'models', filename: 'old-pre.bin', state: 'downloading' })
    let listed: unknown[] = []
    for (let i = 0; i < 200 && !listed.length; i++) {
      listed = (await status()).downloads.filter((d: { bytesDone: number }) => d.bytesDone >= 1_000_000)
      if (!listed.length) await new Promise((res) => setTimeout(res, 25))
    }
    expect(listed).toEqual([{ folder: 'models', filename: 'old-pre.bin', bytesDone: 1_000_000, bytesTotal: 6 * MiB + 32 - 3072 }])
    // Seen while the first GET is still stalled (not only after its resume).
    expect(s.faults.ranges).toEqual([undefined])
    await idle()
    expect(cached('old-pre.bin')).toBe(true)
    s.origin.calls.length = 0
    const l = await load('old-pre.bin')
    expect(Buffer.from(await l.arrayBuffer()).equals(plain)).toBe(true)
    expect(s.origin.calls).toEqual([{ method: 'POST', path: '/resources/get/models' }])
  })

  it('prefetch needs the licence: an unknown resource is 404 and nothing is fetched from the CDN', async () => {
    await login()
    s.faults.ranges = []
    const r = await post(s.loader.url, '/prefetch/nope.bin', { folder: 'models' })
    expect(r.status).toBe(404)
    expect(s.faults.ranges).toEqual([])
  })
})
