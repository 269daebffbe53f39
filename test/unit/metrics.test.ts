// The metrics binding against the Resource API contract (MSW): every call counted by call and outcome, and /metrics itself.
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { http, HttpResponse, delay } from 'msw'
import { describe, expect, it } from 'vitest'
import { API } from '../mocks/resource-api'
import { server } from '../mocks/server'
import { contractWorld } from '../helpers/contract'
import { fromSource, makeEnv } from '../helpers/env'
import { startRuntime } from '../../runtime/server'

const series = (text: string, name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)

const ROOT = join(import.meta.dirname, '../..')

describe('metrics', () => {
  it('prom-client lives in the runtime only: functions and shared code report through env.metrics', () => {
    const files = (readdirSync(join(ROOT, 'functions'), { recursive: true }) as string[]).map((f) => join('functions', f))
      .concat((readdirSync(join(ROOT, 'shared'), { recursive: true }) as string[]).map((f) => join('shared', f)))
      .filter((f) => f.endsWith('.ts'))
    expect(files.length).toBeGreaterThan(20)
    for (const f of files) expect(readFileSync(join(ROOT, f), 'utf8'), f).not.toMatch(/from ['"]prom-client/)
    expect(readFileSync(join(ROOT, 'runtime/bindings/metrics.ts'), 'utf8')).toMatch(/from 'prom-client'/)
  })

  it('counts Resource API requests by call and outcome: status, unreachable, timeout, each retry', async () => {
    const w = await contractWorld({ API_TIMEOUT_MS: '200', API_READ_RETRIES: '2' })
    expect((await w.login()).status).toBe(200)
    server.use(http.post(`${API}/login`, () => HttpResponse.error()))
    expect((await w.login()).status).toBe(502)
    server.resetHandlers(w.api.handler, ...w.cdn.handlers)
    server.use(http.post(`${API}/login`, async () => { await delay(1000); return HttpResponse.json({}) }))
    expect((await w.login()).status).toBe(504)
    server.resetHandlers(w.api.handler, ...w.cdn.handlers)
    // A read that answers 503 is retried twice: three requests.
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    server.use(http.post(`${API}/resources/get/models`, () => HttpResponse.json({}, { status: 503 })))
    expect((await w.req('/load/m.bin')).status).toBe(502)

    const m = await (await w.app.request('/metrics')).text()
    expect(series(m, 'loader_resource_api_requests_total', 'call="login",outcome="200"')).toBe(2)
    expect(series(m, 'loader_resource_api_requests_total', 'call="login",outcome="error"')).toBe(1)
    expect(series(m, 'loader_resource_api_requests_total', 'call="login",outcome="timeout"')).toBe(1)
    expect(series(m, 'loader_resource_api_requests_total', 'call="get_resource",outcome="200"')).toBe(2)
    expect(series(m, 'loader_resource_api_requests_total', 'call="get_resource",outcome="503"')).toBe(3)
    expect(series(m, 'loader_http_requests_total', 'function="login",route="/login",method="POST",status="504"')).toBe(1)
    expect(series(m, 'loader_http_requests_total', 'function="load",route="/load/:filename",method="POST",status="502"')).toBe(1)
    expect(m).not.toMatch(/m\.bin/)
  })

  it('bounded method labels: a method outside the route\'s own is "other"; buckets up to an hour; function_info carries the function\'s release', async () => {
    const w = await contractWorld()
    expect((await w.app.request('/metrics', { method: 'POST' })).status).toBe(405)
    expect((await w.app.request('/login', { method: 'PROPFIND' })).status).toBe(405)
    expect((await w.app.request('/login', { method: 'DELETE' })).status).toBe(405)
    expect((await w.app.request('/status', { method: 'HEAD' })).status).toBe(200)
    const m = await (await w.app.request('/metrics')).text()
    expect(series(m, 'loader_http_requests_total', 'function="runtime",route="/metrics",method="other",status="405"')).toBe(1)
    expect(series(m, 'loader_http_requests_total', 'function="runtime",route="/login",method="other",status="405"')).toBe(2)
    expect(series(m, 'loader_http_requests_total', 'function="status",route="/status",method="HEAD",status="200"')).toBe(1)
    expect(m).not.toMatch(/method="(PROPFIND|DELETE)"/)
    expect(m).not.toMatch(/route="\/metrics",method="POST"/)
    for (const le of ['600', '1800', '3600']) expect(m).toMatch(new RegExp(`^loader_http_request_duration_seconds_bucket\\{le="${le}",`, 'm'))
    expect(m).toMatch(/^loader_function_info\{function="login",version="factory",sha256="/m)
  })

  it('requests without the caller token count under their route, with the normalised method', async () => {
    const token = 'caller-token-0123456789abcdef'
    const w = await contractWorld({ LOADER_API_TOKEN: token })
    expect((await w.app.request('/load/m.bin', { method: 'POST' })).status).toBe(401)
    expect((await w.app.request('/load/m.bin', { method: 'PATCH' })).status).toBe(405)
    const m = await (await w.app.request('/metrics', { headers: { authorization: `Bearer ${token}` } })).text()
    expect(series(m, 'loader_http_requests_total', 'function="load",route="/load/:filename",method="POST",status="401"')).toBe(1)
    expect(series(m, 'loader_http_requests_total', 'function="runtime",route="/load/:filename",method="other",status="405"')).toBe(1)
    expect(m).not.toMatch(/method="PATCH"/)
  })

  it('a request whose client left before the answer is still counted', async () => {
    const { env, cacheDir } = await makeEnv({ PORT: '0' })
    let answer: (() => void) | undefined
    let began: () => void = () => {}
    const started = new Promise<void>((ok) => { began = ok })
    const slow = { name: 'slow', routes: [{ method: 'GET', path: '/slow', body: 'none' }], async fetch() {
      began()
      await new Promise<void>((ok) => { answer = ok })
      return Response.json({ late: true })
    } } as never
    const rt = await startRuntime({ env, load: async () => fromSource([slow]) }, { current: [] })
    // Raw sockets: MSW would intercept fetch and http.request.
    const ask = (path: string, leave = false) => new Promise<string>((ok) => {
      const s = connect(rt.port, '127.0.0.1')
      let out = ''
      s.on('data', (d) => { out += d })
      s.on('close', () => ok(out))
      s.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
      if (leave) void started.then(() => s.destroy())
    })
    try {
      await ask('/slow', true)
      const connections = () => new Promise<number>((ok) => rt.server.getConnections((_e, n) => ok(n)))
      while (await connections() > 0) await new Promise((r) => setTimeout(r, 10))
      answer!()
      let m = ''
      for (let i = 0; i < 100 && !/route="\/slow"/.test(m); i++) {
        await new Promise((r) => setTimeout(r, 10))
        m = await ask('/metrics')
      }
      expect(series(m, 'loader_http_requests_total', 'function="slow",route="/slow",method="GET",status="200"')).toBe(1)
    } finally {
      await rt.close()
      rmSync(cacheDir, { recursive: true, force: true })
    }
  })
})
