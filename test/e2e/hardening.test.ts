// Hardening of the built runtime: 200+ malformed requests, transfer bound, shared cold download, SIGTERM mid-load.
import { request } from 'node:http'
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post, startStack, type Stack } from '../helpers/stack'

const ADMIN = ['hard-admin@example.com', 'hard-admin-pass']
let s: Stack
beforeAll(async () => {
  s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'Admin'] }, { LOGIN_RATE_PER_MINUTE: '100000', MAX_CONCURRENT_TRANSFERS: '64' })
})
afterAll(async () => s?.stop())
const login = async () => expect((await post(s.loader.url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex')

interface Case { name: string; method: string; path: string; headers?: Record<string, string>; body?: string | Uint8Array }

/** Builds the table of malformed requests over every route. */
function cases(): Case[] {
  const out: Case[] = []
  const json = { 'content-type': 'application/json' }
  const routes = ['/health', '/status', '/login', '/load/x.bin', '/prefetch/x.bin', '/upload/x.bin', '/unlock', '/unlock/status']
  for (const path of routes) for (const method of ['PUT', 'DELETE', 'PATCH', ...(path.includes('status') || path === '/health' ? ['POST'] : ['GET'])]) {
    out.push({ name: `wrong method ${method} ${path}`, method, path })
  }
  const badJson = ['{', '{"email":', 'nul', '[1,2', '{"a":1}}', '"just a string', '{"email":"a@b.c","password":"x",}', '\u0000', '{\'email\':1}', 'undefined']
  const wrongTypes: unknown[] = [
    {}, [], null, 42, 'text', { email: 1, password: 'x' }, { email: 'a@b.co', password: 5 }, { email: ['a@b.co'], password: 'x' },
    { email: 'a@b.co', password: null }, { email: 'not-an-email', password: 'x' }, { email: 'a@b.co' }, { password: 'x' },
    { email: 'a@b.co', password: '' }, { email: 'a@b.co', password: { nested: true } }, { email: `${'a'.repeat(400)}@b.co`, password: 'x' },
    { email: 'a@b.co', password: 'x'.repeat(5000) }, { email: 'a\u0000@b.co', password: 'x' }, { email: 'a@b.co', password: 'x', force: 'yes' },
  ]
  for (const path of ['/login', '/unlock']) {
    for (const b of badJson) out.push({ name: `bad JSON ${path} ${JSON.stringify(b)}`, method: 'POST', path, headers: json, body: b })
    for (const b of wrongTypes) {
      if (path === '/login' && JSON.stringify(b).includes('force')) continue
      out.push({ name: `wrong types ${path} ${JSON.stringify(b).slice(0, 40)}`, method: 'POST', path, headers: json, body: JSON.stringify(b) })
    }
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', '']) {
      out.push({ name: `content type "${type}" ${path}`, method: 'POST', path, headers: type ? { 'content-type': type } : {}, body: '{"email":"a@b.co","password":"x"}' })
    }
    out.push({ name: `huge body ${path}`, method: 'POST', path, headers: json, body: JSON.stringify({ email: 'a@b.co', password: 'x', pad: 'x'.repeat(70_000) }) })
  }
  const badNames = ['..', '...', '.hidden', '-dash', '_under', 'a%00b', 'a%2Fb', '%2e%2e', '..%2F..%2Fetc%2Fpasswd', 'a..b', 'x.small', 'x.big', 'x.manifest',
    'a'.repeat(201), 'sp%20ace', 'back%5Cslash', 'uni%C3%A9', 'semi%3Bcolon', 'q%3Fmark', 'star*', 'tab%09', 'nl%0A', 'a%25b', 'quote%22', 'lt%3C']
  for (const n of badNames) {
    out.push({ name: `load name ${n}`, method: 'POST', path: `/load/${n}`, headers: json, body: '{}' })
    out.push({ name: `upload name ${n}`, method: 'POST', path: `/upload/${n}`, headers: { 'content-type': 'application/octet-stream' }, body: 'data' })
  }
  const badFolders = ['UPPER', 'ab', '-start', 'end-', 'a..b', 'a/b', 'a\u0000b', 'x'.repeat(64), 'sp ace', '..', '.dot', 'under_score', '']
  for (const f of badFolders) {
    out.push({ name: `load folder ${JSON.stringify(f)} (body)`, method: 'POST', path: '/load/ok.bin', headers: json, body: JSON.stringify({ folder: f }) })
    out.push({ name: `load folder ${JSON.stringify(f)} (query)`, method: 'POST', path: `/load/ok.bin?folder=${encodeURIComponent(f)}`, headers: json, body: '{}' })
    out.push({ name: `upload folder ${JSON.stringify(f)}`, method: 'POST', path: `/upload/ok.bin?folder=${encodeURIComponent(f)}`, headers: { 'content-type': 'application/octet-stream' }, body: 'x' })
  }
  for (const b of [...badJson, '{"folder":1}', '{"folder":[]}', '{"folder":null}', '[]', '"models"']) {
    out.push({ name: `load body ${b}`, method: 'POST', path: '/load/ok.bin', headers: json, body: b })
  }
  out.push({ name: 'load wrong content type', method: 'POST', path: '/load/ok.bin', headers: { 'content-type': 'text/plain' }, body: 'folder=models' })
  out.push({ name: 'load huge body', method: 'POST', path: '/load/ok.bin', headers: json, body: JSON.stringify({ folder: 'models', pad: 'x'.repeat(70_000) }) })
  const boundary = '----loader-test-boundary'
  const mp = { 'content-type': `multipart/form-data; boundary=${boundary}` }
  const part = (name: string, content: string, file = true) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file ? '; filename="f.bin"' : ''}\r\n${file ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n${content}\r\n`
  for (const [name, body, headers] of [
    ['truncated multipart', part('data', 'abc').slice(0, 60), mp],
    ['multipart cut before closing boundary', part('data', 'abcdef'), mp],
    ['multipart without data', part('folder', 'models', false) + `--${boundary}--\r\n`, mp],
    ['multipart with other file field', part('file', 'abc') + `--${boundary}--\r\n`, mp],
    ['multipart without boundary', part('data', 'abc'), { 'content-type': 'multipart/form-data' }],
    ['multipart garbage', 'this is not multipart at all', mp],
    ['multipart bad folder field', part('data', 'abc') + part('folder', 'NOT_OK', false) + `--${boundary}--\r\n`, mp],
    ['upload text/plain', 'abc', { 'content-type': 'text/plain' }],
    ['upload json', '{"a":1}', { 'content-type': 'application/json' }],
    ['upload no content type', 'abc', {}],
  ] as [string, string, Record<string, string>][]) out.push({ name, method: 'POST', path: '/upload/mp.bin', headers, body })
  return out
}

describe('malformed requests', () => {
  it('every one of 200+ malformed requests gets a 4xx problem+json; the process stays up', async () => {
    await login()
    const table = cases()
    expect(table.length).toBeGreaterThanOrEqual(200)
    const failures: string[] = []
    for (const c of table) {
      const r = await fetch(`${s.loader.url}${c.path}`, { method: c.method, headers: c.headers, body: c.body as BodyInit | undefined })
      const text = await r.text()
      const type = r.headers.get('content-type') ?? ''
      let problem: { status?: number } = {}
      try { problem = JSON.parse(text) } catch { /* reported below */ }
      if (r.status < 400 || r.status > 499 || type !== 'application/problem+json' || problem.status !== r.status) {
        failures.push(`${c.name}: ${r.status} ${type} ${text.slice(0, 120)}`)
      }
    }
    expect(failures).toEqual([])
    expect(s.loader.child.exitCode).toBeNull()
    expect((await fetch(`${s.loader.url}/health`)).status).toBe(200)
    expect(s.loader.output()).not.toContain('unhandled error')
  })
})

describe('load under pressure', () => {
  it('concurrent cold loads of one missing big part share one CDN download', async () => {
    await login()
    const data = randomBytes(8 * 1024 * 1024)
    const up = await fetch(`${s.loader.url}/upload/shared.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) })
    expect(up.status).toBe(201)
    await s.restartLoader({ CACHE_DIR: `${s.loader.cacheDir}-cold` })
    await login()
    s.faults.ranges = []
    const rs = await Promise.all(Array.from({ length: 8 }, () => post(s.loader.url, '/load/shared.bin', {}).then(async (r) => [r.status, sha(Buffer.from(await r.arrayBuffer()))])))
    expect(rs).toEqual(Array.from({ length: 8 }, () => [200, sha(data)]))
    expect(s.faults.ranges).toEqual([undefined])
  })

  it('past MAX_CONCURRENT_TRANSFERS a load gets 503 with Retry-After', async () => {
    await s.restartLoader({ MAX_CONCURRENT_TRANSFERS: '1', CACHE_DIR: `${s.loader.cacheDir}-busy` })
    await login()
    s.faults.stallNextBigGetAfter = 1000
    const first = post(s.loader.url, '/load/shared.bin', {}).catch(() => null)
    await new Promise((r) => setTimeout(r, 300))
    const second = await post(s.loader.url, '/load/shared.bin', {})
    expect(second.status).toBe(503)
    expect(second.headers.get('retry-after')).toBe('1')
    await s.loader.stop('SIGKILL')
    await s.restartLoader()
    await first
  })

  it('SIGTERM during a load: the response in flight completes, then the process exits 0', async () => {
    await login()
    // A slow client that pulls 64 KiB every 50 ms (~1.3 MiB/s): the 8 MiB response takes ~6 s and
    // SIGTERM lands in the middle. (curl --limit-rate bursts several MiB in its first second.)
    const chunks: Buffer[] = []
    const exited = new Promise<number | null>((ok) => {
      const req = request(`${s.loader.url}/load/shared.bin`, { method: 'POST' }, (res) => {
        const pull = setInterval(() => {
          const c = res.read(64 * 1024) ?? res.read()
          if (c) chunks.push(c)
        }, 50)
        res.once('end', () => { clearInterval(pull); ok(res.statusCode === 200 ? 0 : res.statusCode ?? 1) })
        res.once('error', () => { clearInterval(pull); ok(1) })
      })
      req.once('error', () => ok(1))
      req.end()
    })
    await new Promise((res) => setTimeout(res, 1000))
    expect(Buffer.concat(chunks).length).toBeLessThan(8 * 1024 * 1024)
    s.loader.child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(Buffer.concat(chunks).length).toBe(8 * 1024 * 1024)
    expect(await s.loader.stop()).toBe(0)
    await s.restartLoader()
  })
})
