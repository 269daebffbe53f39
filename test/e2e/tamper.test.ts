// Tamper evidence (crypto.md §5b) end to end: an attacker with the CDN alone, version-safe resumes, warm loads.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeManifest } from '../../shared/crypto/manifest'
import { smallSizeOf } from '../../functions/upload/split'
import { opensslEncrypt } from '../helpers/openssl'
import { post, RESOURCE_AES, startStack, type Stack } from '../helpers/stack'

const ADMIN = ['tamper-admin@example.com', 'tamper-admin-pass']
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let s: Stack
beforeAll(async () => { s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'Admin'] }) })
afterAll(async () => s?.stop())

const login = async () => expect((await post(s.loader.url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
const load = (name: string) => post(s.loader.url, `/load/${name}`, { folder: 'models' })
const upload = async (name: string, data: Buffer) => {
  const r = await fetch(`${s.loader.url}/upload/${name}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) })
  expect(r.status).toBe(201)
}
const forget = (name: string) => { for (const ext of ['', '.json']) rmSync(join(s.loader.cacheDir, 'cache/models', `${name}.big${ext}`), { force: true }) }
const bigUrl = (name: string) => `${s.moto.url}/models/${name}.big`

/** Seeds a resource with a manifest, as a manifest-writing uploader would, bypassing the loader. */
/** The partial download of `name` (CACHE_DIR/tmp/partial/models/<small sha256>/<name>.big.part), or '' while there is none. */
function partialOf(name: string): string {
  const dir = join(s.loader.cacheDir, 'tmp/partial/models')
  for (const key of existsSync(dir) ? readdirSync(dir) : []) {
    if (existsSync(join(dir, key, `${name}.big.part`))) return join(dir, key, `${name}.big.part`)
  }
  return ''
}

async function seedWithManifest(name: string, plain: Buffer) {
  const blob = opensslEncrypt(RESOURCE_AES.toString('hex'), randomBytes(16).toString('hex'), plain)
  const n = smallSizeOf(blob.length)
  const small = blob.subarray(0, n)
  const big = blob.subarray(n)
  const r = await s.s3.fetch(bigUrl(name), { method: 'PUT', body: new Uint8Array(big),
    headers: { 'x-amz-content-sha256': sha(big), 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': sha(small) } })
  expect(r.status).toBe(200)
  s.origin.files.set(`models/${name}.manifest`, encodeManifest({ v: 1, bytes: plain.length, blobBytes: blob.length, smallBytes: n, sha256Big: sha(big), sha256Small: sha(small), sha256Plain: sha(plain) }))
  s.origin.files.set(`models/${name}.small`, Buffer.from(small))
}

/** What an attacker holding only the CDN does: flip bits of the big part, rewrite both x-amz-meta headers to match. */
async function tamper(name: string) {
  const big = Buffer.from(await (await s.s3.fetch(bigUrl(name))).arrayBuffer())
  const head = await s.s3.fetch(bigUrl(name), { method: 'HEAD' })
  const smallSha = head.headers.get('x-amz-meta-small-sha256')!
  big[200] ^= 0x5a
  const r = await s.s3.fetch(bigUrl(name), { method: 'PUT', body: new Uint8Array(big),
    headers: { 'x-amz-content-sha256': sha(big), 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': smallSha } })
  expect(r.status).toBe(200)
}

describe('tamper evidence', () => {
  it('upload writes the manifest through the API, before the small part', async () => {
    await login()
    const data = randomBytes(30_000)
    s.origin.calls.length = 0
    await upload('m.bin', data)
    const writes = s.origin.calls.filter((c) => c.path === '/resources/models')
    expect(writes.length).toBe(2)
    const m = JSON.parse(s.origin.files.get('models/m.bin.manifest')!.toString())
    expect(m).toMatchObject({ v: 1, bytes: 30_000, smallBytes: 3072, sha256Plain: sha(data) })
    expect(Object.keys(m)).toEqual(['v', 'bytes', 'blobBytes', 'smallBytes', 'sha256Big', 'sha256Small', 'sha256Plain', 'chunkBytes', 'chunks'])
    // One chunk hash (crypto.md §5c): the whole big part, shorter than chunkBytes.
    const big = Buffer.from(await (await s.s3.fetch(bigUrl('m.bin'))).arrayBuffer())
    expect(m.chunkBytes).toBe(4 * 1024 * 1024)
    expect(m.chunks).toEqual([sha(big)])
    const r = await load('m.bin')
    expect(r.headers.get('x-content-sha256')).toBe(sha(data))
  })

  it('an attacker with the CDN alone: 502, no plaintext byte, nothing under the final name', async () => {
    await login()
    await upload('victim.bin', randomBytes(50_000))
    forget('victim.bin')
    await tamper('victim.bin')
    const r = await load('victim.bin')
    expect(r.status).toBe(502)
    expect(r.headers.get('content-type')).toBe('application/problem+json')
    expect((await r.json()).detail).toMatch(/failed its integrity check/)
    expect(existsSync(join(s.loader.cacheDir, 'cache/models/victim.bin.big'))).toBe(false)
  })

  it('without a manifest (an older upload) the same tamper is not detectable: documented in docs/security.md', async () => {
    await login()
    const data = randomBytes(50_000)
    await upload('old.bin', data)
    s.origin.files.delete('models/old.bin.manifest')
    forget('old.bin')
    await tamper('old.bin')
    const r = await load('old.bin')
    expect(r.status).toBe(200)
    const got = Buffer.from(await r.arrayBuffer())
    expect(got.length).toBe(data.length)
    expect(got.equals(data)).toBe(false)
    expect(s.loader.output()).toContain('not tamper-evident')
  })

  it('a warm load makes exactly one Resource API call (the small part)', async () => {
    await login()
    await upload('warm.bin', randomBytes(20_000))
    expect((await load('warm.bin')).status).toBe(200)
    s.origin.calls.length = 0
    const r = await load('warm.bin')
    await r.arrayBuffer()
    expect(s.origin.calls).toEqual([{ method: 'POST', path: '/resources/get/models' }])
  })

  it('an object replaced between a cut download (SIGKILL) and its resume: the new version, whole, verified', async () => {
    await login()
    const v1 = randomBytes(4 * 1024 * 1024)
    const v2 = randomBytes(4 * 1024 * 1024)
    await seedWithManifest('swap.bin', v1)
    s.faults.ranges = []
    s.faults.stallNextBigGetAfter = 1024 * 1024
    const pending = load('swap.bin').catch(() => null)
    const part = () => partialOf('swap.bin')
    for (let i = 0; i < 200 && !(existsSync(part()) && statSync(part()).size >= 1024 * 1024); i++) await new Promise((r) => setTimeout(r, 25))
    expect(statSync(part()).size).toBe(1024 * 1024)
    await s.loader.stop('SIGKILL')
    await pending
    // Killed mid-download: no half file under a final name.
    expect(readdirSync(join(s.loader.cacheDir, 'cache/models')).filter((f) => f.startsWith('swap.bin'))).toEqual([])
    await seedWithManifest('swap.bin', v2)
    await s.restartLoader()
    await login()
    const r = await load('swap.bin')
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(v2)).toBe(true)
    // The partial file is keyed by the small part too: the new version starts its own, never resuming v1's bytes.
    expect(s.faults.ranges).toEqual([undefined, undefined])
  })

  it('a download killed mid-way resumes after a restart when the object did not change', async () => {
    await login()
    const v = randomBytes(4 * 1024 * 1024)
    await seedWithManifest('resume.bin', v)
    s.faults.ranges = []
    s.faults.stallNextBigGetAfter = 2 * 1024 * 1024
    const pending = load('resume.bin').catch(() => null)
    const part = () => partialOf('resume.bin')
    for (let i = 0; i < 200 && !(existsSync(part()) && statSync(part()).size >= 2 * 1024 * 1024); i++) await new Promise((r) => setTimeout(r, 25))
    await s.loader.stop('SIGKILL')
    await pending
    await s.restartLoader()
    await login()
    const r = await load('resume.bin')
    expect(Buffer.from(await r.arrayBuffer()).equals(v)).toBe(true)
    expect(s.faults.ranges).toEqual([undefined, 'bytes=2097152-'])
  })
})
