// The byte formats through the built loader at their edges (crypto.md §4, §5b, §5c), with the openssl
// command line as the reference: what an upload stores decrypts with openssl and its manifest matches
// openssl dgst; what openssl made loads byte-exact, cold (verified streaming) and warm.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeManifest } from '../../shared/crypto/manifest'
import { opensslDecrypt, opensslEncrypt } from '../helpers/openssl'
import { post, RESOURCE_AES, startStack, type Stack } from '../helpers/stack'

const ADMIN = ['wire-admin@example.com', 'wire-admin-pass']
const CB = 4 * 1024 * 1024
const KEY_HEX = RESOURCE_AES.toString('hex')
/** `openssl dgst -sha256`, hex: the reference for every hash a manifest or header carries. */
const dgst = (b: Buffer) => execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: b, maxBuffer: 1 << 20 }).toString('hex')
/** crypto.md §4, written out: smallSize = min(3072, floor(0.3 n)) in exact arithmetic. */
const smallOf = (n: number) => Math.min(3072, Math.floor((3 * n) / 10))
/** Plaintext sizes: the odd ones, the split rule's edge (blobs of 10224, 10240, 10256 bytes), a big part of 4 MiB − 16, 4 MiB and + 16. */
const SIZES = [0, 1, 15, 16, 17, 10207, 10208, 10223, 10224, 10239, 10240, 10241, CB + 3072 - 16 - 17, CB + 3072 - 32, CB + 3072 + 16 - 17]

let s: Stack
beforeAll(async () => {
  s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'Admin'] })
  expect((await post(s.loader.url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
})
afterAll(async () => s?.stop())

const load = (name: string) => post(s.loader.url, `/load/${name}`, { folder: 'models' })
const bigOnCdn = async (name: string) => Buffer.from(await (await s.s3.fetch(`${s.moto.url}/models/${name}.big`)).arrayBuffer())
const dropCache = (name: string) => {
  for (const f of [`${name}.big`, `${name}.big.json`]) rmSync(join(s.loader.cacheDir, 'cache/models', f), { force: true })
}

describe('an upload at the edges, checked with openssl', () => {
  it.each(SIZES.flatMap((n) => [[n, 'one-pass'], [n, 'temporary-file']] as const))('%i bytes, %s path', async (size, path) => {
    const plain = randomBytes(size)
    const name = `wire-${size}-${path}.bin`
    const up = await fetch(`${s.loader.url}/upload/${name}?folder=models`, {
      method: 'POST', headers: { 'content-type': 'application/octet-stream' },
      ...(path === 'temporary-file' && size > 0
        ? { body: new Blob([new Uint8Array(plain)]).stream(), duplex: 'half' } as RequestInit
        : { body: new Uint8Array(plain) }),
    })
    expect(up.status).toBe(201)
    const small = s.origin.files.get(`models/${name}.small`)!
    const big = await bigOnCdn(name)
    const blob = Buffer.concat([small, big])
    // The stored parts are the blob of crypto.md §1 split as §4 says: openssl decrypts them joined.
    expect(blob.length).toBe(16 + 16 * (Math.floor(size / 16) + 1))
    expect(small.length).toBe(smallOf(blob.length))
    expect(opensslDecrypt(KEY_HEX, blob).equals(plain)).toBe(true)
    // The manifest (§5b, §5c) says the same as openssl dgst, in the spec's key order.
    const chunks: string[] = []
    for (let i = 0; i < big.length; i += CB) chunks.push(dgst(big.subarray(i, i + CB)))
    const manifest = s.origin.files.get(`models/${name}.manifest`)!.toString()
    expect(manifest).toBe(JSON.stringify({ v: 1, bytes: size, blobBytes: blob.length, smallBytes: small.length,
      sha256Big: dgst(big), sha256Small: dgst(small), sha256Plain: dgst(plain), chunkBytes: CB, chunks }))
    const head = await s.s3.fetch(`${s.moto.url}/models/${name}.big`, { method: 'HEAD' })
    expect(head.headers.get('x-amz-meta-small-sha256')).toBe(dgst(small))
    if (path === 'temporary-file' && size > 0) expect(head.headers.get('x-amz-meta-sha256')).toBe(dgst(big))
    // It loads back byte-exact, warm (the upload filled the cache) and cold (from the CDN, verified by chunk).
    for (const temperature of ['warm', 'cold']) {
      if (temperature === 'cold') dropCache(name)
      const r = await load(name)
      expect(r.status).toBe(200)
      expect(r.headers.get('content-length')).toBe(String(size))
      expect(r.headers.get('x-content-sha256')).toBe(dgst(plain))
      expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    }
  })
})

describe('a blob openssl made, at the edges', () => {
  it.each(SIZES.flatMap((n) => [[n, 'chunks'], [n, 'manifest without chunks'], [n, 'no manifest']] as const))('%i bytes, %s: loads byte-exact, cold then warm', async (size, kind) => {
    const plain = randomBytes(size)
    const name = `openssl-${size}-${kind.replace(/ /g, '-')}.bin`
    const blob = opensslEncrypt(KEY_HEX, randomBytes(16).toString('hex'), plain)
    const n = smallOf(blob.length)
    const small = blob.subarray(0, n)
    const big = blob.subarray(n)
    const put = await s.s3.fetch(`${s.moto.url}/models/${name}.big`, { method: 'PUT', body: new Uint8Array(big),
      headers: { 'x-amz-content-sha256': dgst(big), 'x-amz-meta-sha256': dgst(big), 'x-amz-meta-small-sha256': dgst(small) } })
    expect(put.status).toBe(200)
    if (kind !== 'no manifest') {
      const chunks: string[] = []
      for (let i = 0; i < big.length; i += CB) chunks.push(dgst(big.subarray(i, i + CB)))
      s.origin.files.set(`models/${name}.manifest`, encodeManifest({ v: 1, bytes: size, blobBytes: blob.length, smallBytes: n,
        sha256Big: dgst(big), sha256Small: dgst(small), sha256Plain: dgst(plain), ...(kind === 'chunks' ? { chunkBytes: CB, chunks } : {}) }))
    }
    s.origin.files.set(`models/${name}.small`, Buffer.from(small))
    for (let i = 0; i < 2; i++) {
      const r = await load(name)
      expect(r.status).toBe(200)
      expect(r.headers.get('content-length')).toBe(String(size))
      expect(r.headers.get('x-content-sha256')).toBe(kind === 'no manifest' ? null : dgst(plain))
      expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    }
  })
})
