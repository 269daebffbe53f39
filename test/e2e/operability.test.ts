// Operability end to end: /openapi.json validates and every route's real answers (success and problem) match it;
// /metrics moves as the flows say after real loads, uploads, cut downloads, tampering, evictions and an unlock.
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Validator } from '@seriousme/openapi-schema-validator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aesKey } from '../../shared/crypto/blob'
import { opensslEncrypt } from '../helpers/openssl'
import { answerChecker } from '../helpers/openapi'
import { startPodman, type Podman } from '../helpers/podman'
import { startStack, type Stack } from '../helpers/stack'

const TOKEN = 'operability-caller-token-0123'
const AUTH = { authorization: `Bearer ${TOKEN}` }
const ADMIN = ['ops-admin@example.com', 'ops-admin-pass']
const FRAGMENT = `fragment-${randomBytes(8).toString('hex')}`
const IMAGE = 'localhost/loader-ops:1'
const MiB = 1024 * 1024
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let podman: Podman
let s: Stack
let work: string

beforeAll(async () => {
  podman = await startPodman()
  work = mkdtempSync(join(tmpdir(), 'ops-e2e-'))
  mkdirSync(join(work, 'rootfs'))
  mkdirSync(join(work, 'archives'))
  writeFileSync(join(work, 'rootfs/marker.txt'), 'operability\n')
  execFileSync('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.'])
  podman.cli(['import', join(work, 'rootfs.tar'), IMAGE])
  podman.cli(['save', '-o', join(work, 'image.tar'), IMAGE])
  podman.cli(['rmi', IMAGE])
  writeFileSync(join(work, 'archives/image.enc'), opensslEncrypt(aesKey(FRAGMENT).toString('hex'), randomBytes(16).toString('hex'), readFileSync(join(work, 'image.tar'))))
  // Room for one 1 MiB big part and a bit: the second evicts the first.
  s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'Admin'] }, { LOADER_API_TOKEN: TOKEN, CACHE_MAX_BYTES: String(1.5 * MiB),
    UNLOCK_ARCHIVE: join(work, 'archives'), DOCKER_HOST: `unix://${podman.socket}` })
  s.origin.keyFragment = FRAGMENT
})
afterAll(async () => {
  await s?.stop()
  await podman?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
})

/** The value of one series (labels given must match; the others are summed over). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4])
  }
  return sum
}
const scrape = async () => {
  const r = await fetch(`${s.loader.url}/metrics`, { headers: AUTH })
  expect(r.status).toBe(200)
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return r.text()
}

describe('operability', () => {
  it('/openapi.json is a valid OpenAPI 3.1 document, real answers of every route match it, and /metrics moved as the flows say', async () => {
    const u = s.loader.url
    const docRes = await fetch(`${u}/openapi.json`, { headers: AUTH })
    expect(docRes.status).toBe(200)
    const doc = await docRes.json()
    const result = await new Validator().validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(doc.openapi).toBe('3.1.0')
    // Every route of every loaded function is in it.
    const status = await (await fetch(`${u}/status`, { headers: AUTH })).json()
    const ops = new Set(Object.entries(doc.paths).flatMap(([p, o]) => Object.keys(o as object).map((m) => `${m.toUpperCase()} ${p}`)))
    const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../dist/manifest.json'), 'utf8'))
    for (const f of manifest.functions) for (const r of f.routes) expect(ops).toContain(`${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`)
    expect(status.functions.length).toBe(manifest.functions.length)

    const api = answerChecker(doc)
    const json = (body: unknown, headers: Record<string, string> = AUTH) => ({ headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    const raw = (data: Buffer) => ({ headers: { 'content-type': 'application/octet-stream', ...AUTH }, body: new Uint8Array(data) })
    const m0 = await scrape()

    // Problems: no caller token on every route but /health; bad bodies; not logged in.
    for (const [method, path, url] of [['GET', '/status', '/status'], ['POST', '/login', '/login'], ['POST', '/logout', '/logout'],
      ['POST', '/load/{filename}', '/load/x.bin'], ['POST', '/prefetch/{filename}', '/prefetch/x.bin'], ['POST', '/upload/{filename}', '/upload/x.bin'], ['POST', '/unlock', '/unlock'],
      ['GET', '/unlock/status', '/unlock/status'], ['GET', '/metrics', '/metrics'], ['GET', '/openapi.json', '/openapi.json']]) {
      expect((await api.call(method, path, `${u}${url}`)).status).toBe(401)
    }
    expect((await api.call('GET', '/health', `${u}/health`)).status).toBe(200)
    expect((await api.call('GET', '/status', `${u}/status`, { headers: AUTH })).status).toBe(200)
    expect((await api.call('GET', '/metrics', `${u}/metrics`, { headers: AUTH })).status).toBe(200)
    expect((await api.call('GET', '/openapi.json', `${u}/openapi.json`, { headers: AUTH })).status).toBe(200)
    expect((await api.call('POST', '/load/{filename}', `${u}/load/a.bin`, json({}))).status).toBe(401)
    expect((await api.call('POST', '/login', `${u}/login`, json({ email: 'nobody' }))).status).toBe(422)
    expect((await api.call('POST', '/login', `${u}/login`, { headers: { 'content-type': 'text/plain', ...AUTH }, body: '{}' })).status).toBe(415)
    expect((await api.call('POST', '/login', `${u}/login`, json({ email: ADMIN[0], password: 'wrong' }))).status).toBe(401)
    expect((await api.call('POST', '/login', `${u}/login`, json({ email: ADMIN[0], password: ADMIN[1] }))).status).toBe(200)
    expect((await api.call('POST', '/unlock', `${u}/unlock`, json({ email: ADMIN[0], password: ADMIN[1], force: 'yes' }))).status).toBe(422)
    expect((await api.call('POST', '/upload/{filename}', `${u}/upload/a.small`, raw(randomBytes(10)))).status).toBe(422)
    expect((await api.call('POST', '/upload/{filename}', `${u}/upload/a.bin`, { headers: { 'content-type': 'text/plain', ...AUTH }, body: 'x' })).status).toBe(415)
    expect((await api.call('POST', '/load/{filename}', `${u}/load/missing.bin`, json({}))).status).toBe(404)

    // Upload A and B, then loads: cold (a miss and a download), warm (a hit), cut (a resume and a retry).
    const a = randomBytes(MiB)
    const b = randomBytes(40_000)
    let uploaded = 0
    for (const [name, data] of [['a.bin', a], ['b.bin', b]] as const) {
      const up = await api.call('POST', '/upload/{filename}', `${u}/upload/${name}`, raw(data))
      expect(up.status).toBe(201)
      expect(up.json().sha256).toBe(sha(data))
      uploaded += data.length
    }
    const forget = (name: string) => { for (const ext of ['', '.json']) rmSync(join(s.loader.cacheDir, 'cache/models', `${name}.big${ext}`), { force: true }) }
    /** Until no download runs (a verified download, crypto.md §5c, commits after its callers' last byte). */
    const idle = async () => {
      let st: any
      for (let i = 0; i < 400; i++) {
        st = (await api.call('GET', '/status', `${u}/status`, { headers: AUTH })).json()
        if (!st.downloads.length) break
        await new Promise((r) => setTimeout(r, 25))
      }
      expect(st.downloads).toEqual([])
      return st
    }
    const load = async (name: string, expected: Buffer) => {
      const r = await api.call('POST', '/load/{filename}', `${u}/load/${name}`, json({ folder: 'models' }))
      expect(r.status).toBe(200)
      expect(r.body.equals(expected)).toBe(true)
      await idle()
    }
    forget('a.bin')
    const m1 = await scrape()
    await load('a.bin', a)
    const m2 = await scrape()
    expect(metric(m2, 'loader_cache_misses_total') - metric(m1, 'loader_cache_misses_total')).toBe(1)
    expect(metric(m2, 'loader_cdn_downloads_total', { outcome: 'ok' }) - metric(m1, 'loader_cdn_downloads_total', { outcome: 'ok' })).toBe(1)
    const bigA = JSON.parse(readFileSync(join(s.loader.cacheDir, 'cache/models/a.bin.big.json'), 'utf8')).bytes
    expect(metric(m2, 'loader_cdn_download_bytes_total') - metric(m1, 'loader_cdn_download_bytes_total')).toBe(bigA)
    expect(metric(m2, 'loader_cdn_download_duration_seconds_count', { outcome: 'ok' }) - metric(m1, 'loader_cdn_download_duration_seconds_count', { outcome: 'ok' })).toBe(1)
    expect(metric(m2, 'loader_resource_api_requests_total', { call: 'get_resource', outcome: '200' }) - metric(m1, 'loader_resource_api_requests_total', { call: 'get_resource', outcome: '200' })).toBe(2) // small part, manifest
    await load('a.bin', a)
    const m3 = await scrape()
    expect(metric(m3, 'loader_cache_hits_total') - metric(m2, 'loader_cache_hits_total')).toBe(1)
    expect(metric(m3, 'loader_cdn_downloads_total')).toBe(metric(m2, 'loader_cdn_downloads_total'))
    forget('a.bin')
    s.faults.ranges = []
    s.faults.cutNextBigGetAfter = 300_000
    await load('a.bin', a)
    const m4 = await scrape()
    // Resumed when bytes of the cut attempt had reached the disk (a Range GET), restarted otherwise.
    expect(s.faults.ranges.length).toBe(2)
    expect(metric(m4, 'loader_cdn_resumes_total') - metric(m3, 'loader_cdn_resumes_total')).toBe(s.faults.ranges.filter(Boolean).length)
    expect(metric(m4, 'loader_cdn_retries_total') - metric(m3, 'loader_cdn_retries_total')).toBe(1)
    expect(metric(m4, 'loader_cache_entries')).toBe(2)
    expect(metric(m4, 'loader_cache_bytes')).toBe(bigA + JSON.parse(readFileSync(join(s.loader.cacheDir, 'cache/models/b.bin.big.json'), 'utf8')).bytes)

    // Tampering with B on the CDN (both x-amz-meta headers rewritten): its x-amz-meta-sha256 is not the
    // manifest's sha256Big, so the verified download (crypto.md §5c) refuses it before any byte: 502.
    const bigUrl = `${s.moto.url}/models/b.bin.big`
    const big = Buffer.from(await (await s.s3.fetch(bigUrl)).arrayBuffer())
    const smallSha = (await s.s3.fetch(bigUrl, { method: 'HEAD' })).headers.get('x-amz-meta-small-sha256')!
    big[100] ^= 0x5a
    expect((await s.s3.fetch(bigUrl, { method: 'PUT', body: new Uint8Array(big), headers: { 'x-amz-content-sha256': sha(big), 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': smallSha } })).status).toBe(200)
    forget('b.bin')
    const tampered = await api.call('POST', '/load/{filename}', `${u}/load/b.bin`, json({}))
    expect(tampered.status).toBe(502)
    const m5 = await scrape()
    expect(metric(m5, 'loader_cdn_verification_failures_total') - metric(m4, 'loader_cdn_verification_failures_total')).toBe(1)
    expect(metric(m5, 'loader_cdn_downloads_total', { outcome: 'error' }) - metric(m4, 'loader_cdn_downloads_total', { outcome: 'error' })).toBe(1)

    // A third upload of 1 MiB: the cache holds 1.5 MiB, so the least recently used big part goes.
    const c = randomBytes(MiB)
    expect((await api.call('POST', '/upload/{filename}', `${u}/upload/c.bin`, raw(c))).status).toBe(201)
    uploaded += c.length
    const m6 = await scrape()
    expect(metric(m6, 'loader_cache_evictions_total') - metric(m5, 'loader_cache_evictions_total')).toBe(1)
    expect(metric(m6, 'loader_cache_evicted_bytes_total') - metric(m5, 'loader_cache_evicted_bytes_total')).toBe(bigA)
    expect(metric(m6, 'loader_cache_entries')).toBe(1)

    // Prefetch: 202 downloading, the part is cached in the background; 202 cached once it is.
    forget('c.bin')
    const pre = await api.call('POST', '/prefetch/{filename}', `${u}/prefetch/c.bin`, json({ folder: 'models' }))
    expect(pre.status).toBe(202)
    expect(pre.json()).toEqual({ folder: 'models', filename: 'c.bin', state: 'downloading' })
    expect((await idle()).cache).toMatchObject({ entries: 1, maxBytes: expect.any(Number) })
    expect((await api.call('POST', '/prefetch/{filename}', `${u}/prefetch/c.bin`, json({}))).json()).toMatchObject({ state: 'cached' })
    expect((await api.call('POST', '/prefetch/{filename}', `${u}/prefetch/missing.bin`, json({}))).status).toBe(404)

    // Unlock into podman: 202, ready with the image, then 200.
    const started = await api.call('POST', '/unlock', `${u}/unlock`, json({ email: ADMIN[0], password: ADMIN[1] }))
    expect(started.status).toBe(202)
    let st: any
    for (let i = 0; i < 600; i++) {
      st = (await api.call('GET', '/unlock/status', `${u}/unlock/status`, { headers: AUTH })).json()
      if (st.state === 'ready' || st.state === 'error') break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(st).toMatchObject({ state: 'ready', images: [IMAGE] })
    expect((await api.call('POST', '/unlock', `${u}/unlock`, json({ email: ADMIN[0], password: ADMIN[1] }))).status).toBe(200)

    // Logout: later flows answer 401 until the next login.
    const out = await api.call('POST', '/logout', `${u}/logout`, { headers: AUTH })
    expect(out.json()).toMatchObject({ status: 'ok', authenticated: false, wasAuthenticated: true })
    const after = await api.call('POST', '/load/{filename}', `${u}/load/a.bin`, json({}))
    expect(after.status).toBe(401)
    expect((await (await fetch(`${u}/status`, { headers: AUTH })).json()).authenticated).toBe(false)
    expect((await fetch(`${u}/nothing/here`, { headers: AUTH })).status).toBe(404)
    expect((await fetch(`${u}/metrics`, { method: 'POST', headers: AUTH })).status).toBe(405)

    // Every operation answered at least one success, and every one but /health a problem.
    for (const op of api.operations()) {
      expect(api.seen.get(op)?.success.length, `${op} success`).toBeGreaterThan(0)
      if (op !== 'GET /health') expect(api.seen.get(op)?.problem.length, `${op} problem`).toBeGreaterThan(0)
    }

    // Requests by function, route and status; bytes served and received; unlock; functions; process.
    // Counted when each answer's last byte is written: poll until the last one is in.
    // The load function serves /load and /prefetch.
    const served = api.seen.get('POST /load/{filename}')!.bytes + api.seen.get('POST /prefetch/{filename}')!.bytes
    await expect.poll(async () => metric(await scrape(), 'loader_http_response_bytes_total', { function: 'load' })
      - metric(m0, 'loader_http_response_bytes_total', { function: 'load' })).toBe(served)
    const mz = await scrape()
    const requests = (labels: Record<string, string>) => metric(mz, 'loader_http_requests_total', labels) - metric(m0, 'loader_http_requests_total', labels)
    expect(requests({ function: 'load', route: '/load/:filename', method: 'POST', status: '200' })).toBe(3)
    expect(requests({ function: 'load', route: '/load/:filename', method: 'POST', status: '502' })).toBe(1)
    expect(requests({ function: 'upload', route: '/upload/:filename', method: 'POST', status: '201' })).toBe(3)
    expect(requests({ function: 'login', route: '/logout', method: 'POST', status: '200' })).toBe(1)
    expect(requests({ function: 'none', route: 'unmatched', method: 'GET', status: '404' })).toBe(1)
    // A method outside the route's own is counted as "other": a bounded label set.
    expect(requests({ function: 'runtime', route: '/metrics', method: 'other', status: '405' })).toBe(1)
    expect(mz).not.toMatch(/route="\/metrics",method="POST"/)
    expect(metric(mz, 'loader_http_request_duration_seconds_count', { function: 'load', status: '200' })
      - metric(m0, 'loader_http_request_duration_seconds_count', { function: 'load', status: '200' })).toBe(3)
    const received = metric(mz, 'loader_http_request_bytes_total', { function: 'upload' }) - metric(m0, 'loader_http_request_bytes_total', { function: 'upload' })
    expect(received).toBeGreaterThanOrEqual(uploaded)
    expect(received).toBeLessThanOrEqual(uploaded + 1000)
    expect(metric(mz, 'loader_resource_api_requests_total', { call: 'login', outcome: '401' }) - metric(m0, 'loader_resource_api_requests_total', { call: 'login', outcome: '401' })).toBe(1)
    expect(metric(mz, 'loader_resource_api_requests_total', { call: 'key_fragment', outcome: '200' }) - metric(m0, 'loader_resource_api_requests_total', { call: 'key_fragment', outcome: '200' })).toBe(1)
    expect(metric(mz, 'loader_resource_api_requests_total', { call: 'put_resource', outcome: '201' }) - metric(m0, 'loader_resource_api_requests_total', { call: 'put_resource', outcome: '201' })).toBe(6)
    expect(metric(mz, 'loader_unlock_state', { state: 'ready' })).toBe(1)
    expect(metric(mz, 'loader_unlock_state')).toBe(1)
    expect(metric(mz, 'loader_unlock_done_bytes')).toBe(st.progress.bytesTotal)
    // Each function's own release version (`factory` here), not the runtime's.
    for (const f of status.functions) expect(metric(mz, 'loader_function_info', { function: f.name, sha256: f.sha256, version: String(f.version) })).toBe(1)
    expect(status.functions.every((f: { version: unknown }) => f.version === 'factory')).toBe(true)
    expect(mz).toMatch(/^loader_http_request_duration_seconds_bucket\{le="3600",/m)
    expect(metric(mz, 'loader_process_resident_memory_bytes')).toBeGreaterThan(0)
    expect(mz).toMatch(/^loader_nodejs_eventloop_lag_seconds \d/m)
    // Bounded labels: no filename ever becomes a label value.
    expect(mz).not.toMatch(/a\.bin|b\.bin|c\.bin|missing\.bin|\/nothing/)
  })
})
