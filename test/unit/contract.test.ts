// Contract tests of every upstream call and its failures, with MSW for the Resource API and the CDN.
import { randomBytes } from 'node:crypto'
import { http, HttpResponse, delay } from 'msw'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { API, JWT_SECRET } from '../mocks/resource-api'
import { CDN, firstPlainGet } from '../mocks/cdn'
import { server } from '../mocks/server'
import { contractWorld, USER } from '../helpers/contract'

const count = (calls: { method: string; path: string }[], path: string) => calls.filter((c) => c.path === path).length

describe('login', () => {
  it('verifies the token, decrypts cdn.yaml and fills the session', async () => {
    const w = await contractWorld({ JWT_SECRET })
    const r = await w.login()
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ status: 'ok', email: USER.email, role: 'ApiAdmin' })
    const st = await (await w.app.request('/status')).json()
    expect(st).toMatchObject({ authenticated: true, jwt: 'verified', cdn: 'configured', user: { email: USER.email, role: 'ApiAdmin' } })
  })

  it('refuses a token with a bad signature (502) and an expired one (502)', async () => {
    const w = await contractWorld({ JWT_SECRET: 'another-secret-entirely-0123' })
    const r = await w.login()
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/signature/)
    const expired = await new SignJWT({ email: USER.email, role: '40' }).setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(new TextEncoder().encode(JWT_SECRET))
    const w2 = await contractWorld({ JWT_SECRET })
    server.use(http.post(`${API}/login`, () => HttpResponse.json({ token: expired })))
    const r2 = await w2.login()
    expect(r2.status).toBe(502)
    expect((await r2.json()).detail).toMatch(/expired/)
  })

  it('answers 401 for bad credentials and 403 when the device is refused', async () => {
    const w = await contractWorld()
    expect((await w.req('/login', { ...USER, password: 'nope' })).status).toBe(401)
    w.api.state.deniedHardware.add((await w.env.hardware()).fingerprint)
    const r = await w.login()
    expect(r.status).toBe(403)
    expect((await r.json()).detail).toMatch(/refuses this device/)
  })

  it('names the missing field of a malformed cdn.yaml', async () => {
    const w = await contractWorld()
    w.api.state.files.set('cdn.yaml', Buffer.from('host: http://cdn.test\ndownloader_access_key: DL\n'))
    const r = await w.login()
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toBe('cdn.yaml: downloader_access_secret is missing')
    w.api.state.files.set('cdn.yaml', Buffer.from(': : not yaml ['))
    expect((await w.login()).status).toBe(502)
  })

  it('maps an unreachable or slow Resource API to 502 and 504', async () => {
    const w = await contractWorld({ API_TIMEOUT_MS: '200' })
    server.use(http.post(`${API}/login`, () => HttpResponse.error()))
    expect((await w.login()).status).toBe(502)
    server.resetHandlers(w.api.handler, ...w.cdn.handlers)
    server.use(http.post(`${API}/login`, async () => { await delay(1000); return HttpResponse.json({}) }))
    expect((await w.login()).status).toBe(504)
  })
})

describe('load', () => {
  it('logs in again exactly once on a 401 and repeats the call', async () => {
    const w = await contractWorld()
    const plain = w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    let first = true
    server.use(http.post(`${API}/resources/get/models`, () => {
      if (!first) return undefined
      first = false
      return HttpResponse.json({}, { status: 401 })
    }))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    expect(count(w.api.state.calls, '/login')).toBe(2)
  })

  it('concurrent callers share one re-login', async () => {
    const w = await contractWorld()
    const plain = w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    let refusals = 4
    server.use(http.post(`${API}/resources/get/models`, () => (refusals-- > 0 ? HttpResponse.json({}, { status: 401 }) : undefined)))
    const rs = await Promise.all([1, 2, 3, 4].map(() => w.req('/load/m.bin')))
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 200])
    // Each body is read to its end: an unread one would keep its hold on the cached file (and its
    // descriptor) until the garbage collector closes it.
    for (const r of rs) expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    expect(count(w.api.state.calls, '/login')).toBe(2)
  })

  it('a 403 after the re-login is 403 (device or role refused)', async () => {
    const w = await contractWorld()
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    server.use(http.post(`${API}/resources/get/models`, () => HttpResponse.json({}, { status: 403 })))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(403)
    expect(count(w.api.state.calls, '/login')).toBe(2)
  })

  it('answers 404 for an unknown resource', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    expect((await w.req('/load/none.bin')).status).toBe(404)
  })

  it('retries a read on 5xx with backoff, a bounded number of times', async () => {
    const w = await contractWorld()
    const plain = w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    let fails = 2
    server.use(http.post(`${API}/resources/get/models`, () => (fails-- > 0 ? HttpResponse.json({}, { status: 503 }) : undefined)))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    server.use(http.post(`${API}/resources/get/models`, () => HttpResponse.json({}, { status: 500 })))
    const r2 = await w.req('/load/m.bin')
    expect(r2.status).toBe(502)
    expect((await r2.json()).detail).toMatch(/answered 500/)
  })

  it('times out a slow small-part call as 504', async () => {
    const w = await contractWorld({ API_TIMEOUT_MS: '200', API_READ_RETRIES: '0' })
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    server.use(http.post(`${API}/resources/get/models`, async () => { await delay(1000); return HttpResponse.json({}) }))
    expect((await w.req('/load/m.bin')).status).toBe(504)
  })

  it('times out a slow manifest call as 504 too, not as a 502', async () => {
    const w = await contractWorld({ API_TIMEOUT_MS: '200', API_READ_RETRIES: '0' })
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    server.use(http.post(`${API}/resources/get/models`, async ({ request }) => {
      if (((await request.clone().json()) as { fileName: string }).fileName.endsWith('.manifest')) await delay(1000)
      return undefined
    }))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(504)
  })

  it('retries a read answered with any 5xx (a proxy\'s 520 too), not only 500/502/503/504', async () => {
    const w = await contractWorld({ API_READ_RETRIES: '1' })
    const plain = w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    let failed = 0
    server.use(http.post(`${API}/resources/get/models`, async ({ request }) => {
      const name = ((await request.clone().json()) as { fileName: string }).fileName
      if (name === 'm.bin.small' && failed++ === 0) return new HttpResponse('origin error', { status: 520 })
      return undefined
    }))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    expect(failed).toBe(2)
  })

  it('retries a read after a timeout with a new attempt each time (API_READ_RETRIES=2 is three calls)', async () => {
    const w = await contractWorld({ API_TIMEOUT_MS: '200', API_READ_RETRIES: '2' })
    const plain = w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    let calls = 0
    const isSmall = async (request: Request) => ((await request.clone().json()) as { fileName: string }).fileName === 'm.bin.small'
    server.use(http.post(`${API}/resources/get/models`, async ({ request }) => {
      if (await isSmall(request) && ++calls <= 2) await delay(1000)
      return undefined
    }))
    const r = await w.req('/load/m.bin')
    expect(calls).toBe(3)
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    calls = 0
    server.resetHandlers(w.api.handler, ...w.cdn.handlers)
    server.use(http.post(`${API}/resources/get/models`, async ({ request }) => {
      if (await isSmall(request)) { calls++; await delay(1000) }
      return undefined
    }))
    const r2 = await w.req('/load/m.bin')
    expect(r2.status).toBe(504)
    expect(calls).toBe(3)
  })

  it('resumes the big part after a connection reset mid-body, with Range and If-Match', async () => {
    const w = await contractWorld()
    const plain = w.seed('m.bin', randomBytes(300_000))
    expect((await w.login()).status).toBe(200)
    const whole = w.cdn.objects.get('models/m.bin.big')!
    server.use(firstPlainGet('models/m.bin.big', () => {
      const stream = new ReadableStream({
        start(c) { c.enqueue(new Uint8Array(whole.body.subarray(0, 100_000))); setTimeout(() => c.error(new Error('connection reset')), 100) },
      })
      return new HttpResponse(stream, { status: 200, headers: { etag: whole.etag, ...whole.meta } })
    }))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    const resumed = w.cdn.calls.filter((c) => c.range)
    expect(resumed.length).toBe(1)
    expect(Number(/bytes=(\d+)-/.exec(resumed[0].range!)![1])).toBeGreaterThan(0)
  })

  it('a resume refused with 412 (the object changed) restarts from zero: two versions are never spliced', async () => {
    const w = await contractWorld()
    const plain = w.seed('m.bin', randomBytes(300_000))
    expect((await w.login()).status).toBe(200)
    const whole = w.cdn.objects.get('models/m.bin.big')!
    server.use(firstPlainGet('models/m.bin.big', () => {
      const stream = new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(whole.body.subarray(0, 100_000)))
          // The object is written again meanwhile: same name, a new ETag.
          setTimeout(() => { whole.etag = '"rewritten"'; c.error(new Error('connection reset')) }, 100)
        },
      })
      return new HttpResponse(stream, { status: 200, headers: { etag: whole.etag, ...whole.meta } })
    }))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(200)
    expect(Buffer.from(await r.arrayBuffer()).equals(plain)).toBe(true)
    // (The cut first GET is answered by the override above, which the mock does not record.)
    const gets = w.cdn.calls.filter((c) => c.method === 'GET').map((c) => c.range)
    expect(gets.length).toBe(2)
    expect(gets[0]).toMatch(/^bytes=\d+-$/)
    expect(gets[1]).toBeUndefined()
  })

  it('refuses parts of two uploads (x-amz-meta-small-sha256) and a big part whose sha256 fails, 502', async () => {
    const w = await contractWorld()
    w.seed('m.bin')
    const other = w.cdn.objects.get('models/m.bin.big')!
    w.seed('m.bin')
    w.cdn.objects.set('models/m.bin.big', other)
    expect((await w.login()).status).toBe(200)
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/another upload/)
    w.seed('n.bin')
    const o = w.cdn.objects.get('models/n.bin.big')!
    o.body[5] ^= 1
    const r2 = await w.req('/load/n.bin')
    expect(r2.status).toBe(502)
    expect((await r2.json()).detail).toMatch(/integrity/)
  })

  it('a Resource API answer reset mid-body is a 502, retried as a read', async () => {
    const w = await contractWorld({ API_READ_RETRIES: '0' })
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    server.use(http.post(`${API}/resources/get/models`, () => new HttpResponse(new ReadableStream({
      start(c) { c.enqueue(new Uint8Array(100)); setTimeout(() => c.error(new Error('connection reset')), 20) },
    }), { status: 200, headers: { 'content-type': 'application/octet-stream' } })))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/m\.bin\.small/)
  })

  it('a CDN that cannot be reached is a clear 502', async () => {
    const w = await contractWorld({ CDN_READ_RETRIES: '0' })
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    server.use(http.get(`${CDN}/models/m.bin.big`, () => HttpResponse.error()))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/the CDN could not be reached/)
  })

  it('a missing big part is a clear 502', async () => {
    const w = await contractWorld()
    w.seed('m.bin')
    w.cdn.objects.delete('models/m.bin.big')
    expect((await w.login()).status).toBe(200)
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/CDN has no object/)
  })
})

describe('upload', () => {
  it('never retries the small-part write on a 5xx', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const writes: string[] = []
    // Only the small part fails: the manifest before it goes through to the API.
    server.use(http.post(`${API}/resources/models`, async ({ request }) => {
      const name = ((await request.clone().formData()).get('data') as File).name
      writes.push(name)
      return name.endsWith('.small') ? HttpResponse.json({}, { status: 500 }) : undefined
    }))
    const r = await w.app.request('/upload/u.bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(randomBytes(5000)) })
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/u\.bin\.small/)
    expect(writes).toEqual(['u.bin.manifest', 'u.bin.small'])
    expect(w.api.state.files.has('models/u.bin.manifest')).toBe(true)
    expect(w.api.state.files.has('models/u.bin.small')).toBe(false)
    expect(w.cdn.objects.has('models/u.bin.big')).toBe(true)
    expect(await w.env.cache.record('models', 'u.bin')).toBeNull()
  })

  it('puts the big part with both x-amz-meta headers and a SigV4 signature, then the small part', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const data = randomBytes(50_000)
    const r = await w.app.request('/upload/u.bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) })
    expect(r.status).toBe(201)
    const o = w.cdn.objects.get('models/u.bin.big')!
    expect(Object.keys(o.meta).sort()).toEqual(['x-amz-meta-sha256', 'x-amz-meta-small-sha256'])
    expect(w.cdn.calls.find((c) => c.method === 'PUT')!.auth).toMatch(/^AWS4-HMAC-SHA256 Credential=UP\//)
    expect(w.api.state.files.get('models/u.bin.small')!.length).toBe(3072)
    const order = w.api.state.calls.map((c) => c.path)
    expect(order[order.length - 1]).toBe('/resources/models')
  })

  it('refuses an upload above UPLOAD_MAX_BYTES with 413 and leaves nothing behind', async () => {
    const w = await contractWorld({ UPLOAD_MAX_BYTES: '1000' })
    expect((await w.login()).status).toBe(200)
    const body = new ReadableStream({ start(c) { c.enqueue(new Uint8Array(randomBytes(3000))); c.close() } })
    const r = await w.app.request('/upload/big.bin', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body, duplex: 'half' } as RequestInit)
    expect(r.status).toBe(413)
    expect(w.cdn.objects.size).toBe(0)
    const { readdirSync } = await import('node:fs')
    expect(readdirSync(`${w.cacheDir}/tmp`).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })
})
