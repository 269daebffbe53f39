// F1–F3 end to end: built runtime + development origin + moto checking SigV4 and IAM policies.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { smallSizeOf } from '../../functions/upload/split'
import { opensslDecrypt, opensslEncrypt } from '../helpers/openssl'
import { post, RESOURCE_AES, startStack, type Stack } from '../helpers/stack'

const ADMIN = ['admin@example.com', 'admin-pass-1']
const VIEWER = ['viewer@example.com', 'viewer-pass-1']
const NOBODY = ['none@example.com', 'none-pass-1']

let s: Stack
beforeAll(async () => {
  s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'ApiAdmin'], [VIEWER[0]]: [VIEWER[1], 'Operator'], [NOBODY[0]]: [NOBODY[1], 0] })
})
afterAll(async () => s?.stop())

const login = async ([email, password]: string[]) => post(s.loader.url, '/login', { email, password })
/** A raw upload: with Content-Length (the one-pass path), or chunked (no length: the temporary-file path). */
const upload = (name: string, data: Buffer, folder = 'models', chunked = false) => fetch(`${s.loader.url}/upload/${name}?folder=${folder}`, {
  method: 'POST', headers: { 'content-type': 'application/octet-stream' },
  ...(chunked
    ? { body: new Blob([new Uint8Array(data)]).stream(), duplex: 'half' } as RequestInit
    : { body: new Uint8Array(data) }),
})
/** The `x-amz-meta-*` headers of a big part on moto, read with the uploader keys. */
const bigMeta = async (name: string, folder = 'models') => {
  const r = await s.s3.fetch(`${s.moto.url}/${folder}/${name}.big`, { method: 'HEAD' })
  return { status: r.status, sha256: r.headers.get('x-amz-meta-sha256'), smallSha256: r.headers.get('x-amz-meta-small-sha256'), length: r.headers.get('content-length') }
}
/** Bytes the loader process has read (sockets and files), from /proc/<pid>/io. */
const readBytes = () => Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${s.loader.child.pid}/io`, 'utf8'))![1])
const load = (name: string, folder = 'models') => post(s.loader.url, `/load/${name}`, { folder })
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Stores a blob the way the seed's uploader did: big part on the CDN (with or without meta), small part on the API. */
async function seed(name: string, blob: Buffer, meta = true, folder = 'models') {
  const n = smallSizeOf(blob.length)
  const small = blob.subarray(0, n)
  const big = blob.subarray(n)
  const headers: Record<string, string> = { 'x-amz-content-sha256': sha(big) }
  if (meta) Object.assign(headers, { 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': sha(small) })
  const r = await s.s3.fetch(`${s.moto.url}/${folder}/${name}.big`, { method: 'PUT', headers, body: new Uint8Array(big) })
  expect(r.status).toBe(200)
  s.origin.files.set(`${folder}/${name}.small`, Buffer.from(small))
}

describe('login', () => {
  it('refuses bad credentials with 401 and logs in with good ones', async () => {
    expect((await login([ADMIN[0], 'wrong'])).status).toBe(401)
    const r = await login(ADMIN)
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ status: 'ok', email: ADMIN[0], role: 'ApiAdmin' })
    const st = await (await fetch(`${s.loader.url}/status`)).json()
    expect(st).toMatchObject({ authenticated: true, user: { email: ADMIN[0], role: 'ApiAdmin' }, jwt: 'verified', cdn: 'configured' })
  })
})

describe('upload and load round trips', () => {
  beforeAll(async () => { expect((await login(ADMIN)).status).toBe(200) })

  const SIZES = [0, 1, 15, 16, 17, 3072, 10240, 10241, 64 * 1024 * 1024]
  it.each(SIZES.flatMap((n) => [[n, 'one-pass'], [n, 'temporary-file']]))('%i bytes, %s path', async (size, path) => {
    const data = randomBytes(size as number)
    const name = `rt-${size}-${path}.bin`
    const up = await upload(name, data, 'models', path === 'temporary-file')
    expect(up.status).toBe(201)
    const info = await up.json()
    const n = 16 + (Math.floor(size as number / 16) + 1) * 16
    expect(info).toEqual({ filename: name, folder: 'models', bytes: size, smallBytes: smallSizeOf(n), bigBytes: n - smallSizeOf(n), sha256: sha(data) })
    // Which path ran: only the temporary-file path knows the big part's hash before its PUT.
    const meta = await bigMeta(name)
    expect(meta).toMatchObject({ status: 200, length: String(n - smallSizeOf(n)), smallSha256: expect.stringMatching(/^[0-9a-f]{64}$/) })
    // (An empty stream body is sent with Content-Length: 0, so 0 bytes always take the one pass.)
    if (size !== 0) expect(meta.sha256 === null).toBe(path === 'one-pass')
    // Its log line says where the time went, phase by phase.
    const logged = s.loader.output().split('\n').filter((l) => l.includes('"msg":"upload"') && l.includes(`"filename":"${name}"`)).map((l) => JSON.parse(l))
    expect(logged).toHaveLength(1)
    expect(Object.keys(logged[0].ms)).toEqual(['body', 'cdn', 'api', 'cache'])
    for (const ms of Object.values(logged[0].ms)) expect(ms).toEqual(expect.any(Number))
    const r = await load(name)
    expect(r.status).toBe(200)
    expect(r.headers.get('content-length')).toBe(String(size))
    expect(r.headers.get('content-disposition')).toBe(`attachment; filename="${name}"`)
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(data))
  })

  it('one pass: the loader reads the bytes once (no ciphertext temporary file read back)', async () => {
    const size = 32 * 1024 * 1024
    const before = readBytes()
    expect((await upload('one-pass-io.bin', randomBytes(size))).status).toBe(201)
    const onePass = readBytes() - before
    const before2 = readBytes()
    expect((await upload('temp-io.bin', randomBytes(size), 'models', true)).status).toBe(201)
    const twoPass = readBytes() - before2
    expect(onePass).toBeGreaterThanOrEqual(size)
    expect(onePass).toBeLessThan(size * 1.25)
    expect(twoPass).toBeGreaterThan(size * 1.75)
    // And the cache entry is whole: a load needs no CDN.
    s.faults.ranges = []
    const r = await load('one-pass-io.bin')
    expect(r.status).toBe(200)
    expect((await r.arrayBuffer()).byteLength).toBe(size)
    expect(s.faults.ranges).toEqual([])
  })

  it('one pass: a body that ends short of its Content-Length aborts the PUT and stores nothing', async () => {
    const name = 'short.bin'
    const declared = 8 * 1024 * 1024
    const puts = s.faults.bigPuts ?? 0
    await new Promise<void>((resolve, reject) => {
      const sock = connect(s.loader.port, '127.0.0.1', () => {
        sock.write(`POST /upload/${name}?folder=models HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\ncontent-length: ${declared}\r\n\r\n`)
        sock.write(randomBytes(2 * 1024 * 1024))
        // Cut the connection once the big part's PUT has begun on the CDN side.
        const deadline = Date.now() + 30_000
        const t = setInterval(() => {
          if (Date.now() > deadline) {
            clearInterval(t)
            sock.destroy()
            reject(new Error('the big part PUT did not begin while the body was still arriving'))
          } else if ((s.faults.bigPuts ?? 0) > puts) {
            clearInterval(t)
            sock.destroy()
            resolve()
          }
        }, 20)
      })
      sock.on('error', reject)
    })
    // The loader notices, aborts the PUT and cleans up; then nothing of the upload exists anywhere.
    const tmp = join(s.loader.cacheDir, 'tmp')
    for (let i = 0; i < 200 && readdirSync(tmp).some((f) => f.endsWith('.tmp')); i++) await new Promise((r) => setTimeout(r, 50))
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([])
    expect((await bigMeta(name)).status).toBe(404)
    expect(s.origin.files.has(`models/${name}.small`)).toBe(false)
    expect(s.origin.files.has(`models/${name}.manifest`)).toBe(false)
    expect(existsSync(join(s.loader.cacheDir, `cache/models/${name}`))).toBe(false)
    // The request was answered 400 (bad-body), as the access log shows; the caller had gone.
    const line = s.loader.output().split('\n').find((l) => l.includes(`"path":"/upload/${name}"`) && l.includes('"status"'))
    expect(line).toMatch(/"status":400/)
  })

  it('takes the multipart form with the folder field after the data', async () => {
    const data = randomBytes(5000)
    const form = new FormData()
    form.append('data', new Blob([new Uint8Array(data)]), 'x.bin')
    form.append('folder', 'other-folder')
    const up = await fetch(`${s.loader.url}/upload/multi.bin`, { method: 'POST', body: form })
    expect(up.status).toBe(201)
    expect((await up.json()).folder).toBe('other-folder')
    const r = await load('multi.bin', 'other-folder')
    expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
  })

  it('an upload reassembled from the CDN and the API decrypts with openssl enc -d', async () => {
    const data = randomBytes(20_000)
    expect((await upload('reassemble.bin', data)).status).toBe(201)
    const big = Buffer.from(await (await s.s3.fetch(`${s.moto.url}/models/reassemble.bin.big`)).arrayBuffer())
    const small = s.origin.files.get('models/reassemble.bin.small')!
    expect(small.length).toBe(3072)
    expect(opensslDecrypt(RESOURCE_AES.toString('hex'), Buffer.concat([small, big])).equals(data)).toBe(true)
  })

  it('loads a resource whose blob openssl made (with and without x-amz-meta)', async () => {
    for (const meta of [true, false]) {
      const data = randomBytes(12_345)
      const name = `openssl-${meta}.bin`
      await seed(name, opensslEncrypt(RESOURCE_AES.toString('hex'), randomBytes(16).toString('hex'), data), meta)
      const r = await load(name)
      expect(r.status).toBe(200)
      expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
    }
  })

  it('refreshes a stale cache entry after a re-upload', async () => {
    const v1 = randomBytes(40_000)
    const v2 = randomBytes(40_000)
    await seed('stale.bin', opensslEncrypt(RESOURCE_AES.toString('hex'), randomBytes(16).toString('hex'), v1))
    expect(Buffer.from(await (await load('stale.bin')).arrayBuffer()).equals(v1)).toBe(true)
    await seed('stale.bin', opensslEncrypt(RESOURCE_AES.toString('hex'), randomBytes(16).toString('hex'), v2))
    expect(Buffer.from(await (await load('stale.bin')).arrayBuffer()).equals(v2)).toBe(true)
  })

  it('resumes a big-part download cut mid-way from the bytes on disk', async () => {
    const data = randomBytes(3 * 1024 * 1024)
    await seed('cut.bin', opensslEncrypt(RESOURCE_AES.toString('hex'), randomBytes(16).toString('hex'), data))
    s.faults.ranges = []
    s.faults.cutNextBigGetAfter = 1024 * 1024
    const r = await load('cut.bin')
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
    expect(s.faults.ranges[0]).toBeUndefined()
    expect(s.faults.ranges[1]).toMatch(/^bytes=\d+-$/)
    expect(Number(/=(\d+)-/.exec(s.faults.ranges[1]!)![1])).toBeGreaterThan(0)
  })

  it('never leaves a file under a final name that is not whole, nor plaintext on disk', async () => {
    const files: string[] = []
    const walk = (d: string) => { for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : files.push(join(d, e.name)) }
    walk(s.loader.cacheDir)
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false)
    for (const f of files.filter((x) => x.endsWith('.big'))) expect(existsSync(`${f}.json`)).toBe(true)
    const n = 16 + (3 * 1024 * 1024 / 16 + 1) * 16
    expect(statSync(join(s.loader.cacheDir, 'cache/models/cut.bin.big')).size).toBe(n - 3072)
  })
})

describe('authorization and failures', () => {
  it('answers 401 without a session, 403 for role None, 403 for an upload by a viewer', async () => {
    await s.restartLoader()
    expect((await load('rt-1-one-pass.bin')).status).toBe(401)
    expect((await login(NOBODY)).status).toBe(200)
    expect((await load('rt-1-one-pass.bin')).status).toBe(403)
    expect((await login(VIEWER)).status).toBe(200)
    expect((await load('rt-1-one-pass.bin')).status).toBe(200)
    const up = await upload('viewer.bin', randomBytes(10))
    expect(up.status).toBe(403)
    expect(up.headers.get('content-type')).toBe('application/problem+json')
  })

  it('answers 404 for an unknown resource and 422 for bad names', async () => {
    expect((await login(VIEWER)).status).toBe(200)
    expect((await load('no-such.bin')).status).toBe(404)
    // `..` is resolved away by the URL itself (POST /): no route, 404. Every other bad name reaches the check: 422.
    const expected: [string, number, string][] = [
      ['..', 404, 'about:blank'],
      ...['.hidden', 'a.small', 'x.big', 'y.manifest', 'a%00b', 'a..b', 'a'.repeat(201)].map((n): [string, number, string] => [n, 422, 'https://loader.local/problems/invalid-filename']),
    ]
    for (const [bad, status, type] of expected) {
      const r = await load(bad)
      expect([bad, r.status]).toEqual([bad, status])
      expect(r.headers.get('content-type')).toBe('application/problem+json')
      expect((await r.json()).type).toBe(type)
    }
    expect((await load('ok.bin', 'UPPER')).status).toBe(422)
    expect((await load('ok.bin', 'a..b')).status).toBe(422)
  })

  it('a wrong CDN secret is a clear 502', async () => {
    await seed('uncached.bin', opensslEncrypt(RESOURCE_AES.toString('hex'), randomBytes(16).toString('hex'), randomBytes(50_000)))
    s.setCdnYaml({ downloader: { accessKeyId: s.moto.downloader.accessKeyId, secretAccessKey: 'wrong-secret-value' } })
    try {
      await s.restartLoader()
      expect((await login(VIEWER)).status).toBe(200)
      const r = await load('uncached.bin')
      expect(r.status).toBe(502)
      expect((await r.json()).detail).toMatch(/CDN refused/)
    } finally {
      s.setCdnYaml()
    }
  })

  it('a wrong uploader secret fails both upload paths with a clear 502, and nothing reaches the API', async () => {
    s.setCdnYaml({ uploader: { accessKeyId: s.moto.uploader.accessKeyId, secretAccessKey: 'wrong-secret-value' } })
    try {
      await s.restartLoader()
      expect((await login(ADMIN)).status).toBe(200)
      for (const chunked of [false, true]) {
        const name = `refused-${chunked}.bin`
        const r = await upload(name, randomBytes(3 * 1024 * 1024), 'models', chunked)
        expect(r.status).toBe(502)
        expect((await r.json()).detail).toMatch(/CDN refused/)
        expect((await bigMeta(name)).status).toBe(404)
        expect(s.origin.files.has(`models/${name}.small`)).toBe(false)
        expect(s.origin.files.has(`models/${name}.manifest`)).toBe(false)
      }
      expect(readdirSync(join(s.loader.cacheDir, 'tmp')).filter((f) => f.endsWith('.tmp'))).toEqual([])
    } finally {
      s.setCdnYaml()
      await s.restartLoader()
    }
  })
})
