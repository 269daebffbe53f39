// The runtime's app over source functions: routes, problem+json, 404/405, caller token, limits.
import { describe, expect, it } from 'vitest'
import health from '../../functions/health/index'
import status from '../../functions/status/index'
import type { LoaderFunction } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { readJson } from '../../shared/http/json'
import * as v from 'valibot'
import { makeApp } from '../helpers/env'
import { idle, writeUnlock } from '../../shared/contract/unlock-state'
import { createRateLimiter } from '../../runtime/middleware/rate-limit'

const echo = {
  name: 'echo',
  routes: [{ method: 'POST', path: '/echo/:id', rateLimited: true }, { method: 'GET', path: '/boom' }, { method: 'GET', path: '/teapot' }],
  async fetch(request, _env, ctx) {
    const url = new URL(request.url)
    if (url.pathname === '/boom') throw new Error('secret-internal-detail')
    if (url.pathname === '/teapot') throw new HttpError(409, 'a clear detail')
    const body = await readJson(request, v.object({ n: v.number() }))
    return Response.json({ id: ctx.params.id, n: body.n })
  },
} satisfies LoaderFunction

const TOKEN = 'caller-token-0123456789'

describe('runtime app', () => {
  it('serves /health and /status with every function listed', async () => {
    const { app } = await makeApp([health, status, echo])
    const h = await app.request('/health')
    expect(h.status).toBe(200)
    expect(await h.json()).toEqual({ status: 'healthy' })
    expect(h.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(h.headers.get('x-content-type-options')).toBe('nosniff')
    const s = await (await app.request('/status')).json()
    expect(s).toMatchObject({ status: 'ok', authenticated: false, user: null, jwt: 'unverified', cdn: 'not-configured',
      hardware: 'override', callerAuth: 'off', unlock: { state: 'idle' } })
    expect(s.functions.map((f: { name: string }) => f.name)).toEqual(['health', 'status', 'echo'])
  })

  it('/status shows the public unlock view, never the internal archive signature', async () => {
    const { app, env } = await makeApp([status])
    await writeUnlock(env.state, { ...idle(), state: 'ready', images: ['localhost/x:1'], archives: '[["secret-archive.enc",1,2]]' })
    const s = await (await app.request('/status')).json()
    expect(s.unlock).toMatchObject({ state: 'ready', images: ['localhost/x:1'] })
    expect(s.unlock).not.toHaveProperty('archives')
    expect(JSON.stringify(s)).not.toContain('secret-archive')
  })

  it('answers unknown routes 404 and wrong methods 405 with Allow, as problem+json', async () => {
    const { app } = await makeApp([health, echo])
    const nf = await app.request('/nothing')
    expect(nf.status).toBe(404)
    expect(nf.headers.get('content-type')).toBe('application/problem+json')
    const na = await app.request('/health', { method: 'DELETE' })
    expect(na.status).toBe(405)
    expect(na.headers.get('allow')).toBe('GET')
    expect((await na.json()).requestId).toBe(na.headers.get('x-request-id'))
  })

  it('keeps a caller request id of 1–64 letters, digits, "_", "." or "-", and replaces anything else', async () => {
    const { app } = await makeApp([health, echo])
    const idOf = async (given: string) => (await app.request('/health', { headers: { 'x-request-id': given } })).headers.get('x-request-id')
    expect(await idOf('v1.2.3')).toBe('v1.2.3')
    expect(await idOf('trace_span-7')).toBe('trace_span-7')
    for (const bad of ['a=b', 'x'.repeat(65), 'a b', 'ünï']) expect(await idOf(bad)).toMatch(/^[0-9a-f-]{36}$/)
    const problem = await app.request('/teapot', { headers: { 'x-request-id': 'req.42' } })
    expect(problem.headers.get('x-request-id')).toBe('req.42')
    expect((await problem.json()).requestId).toBe('req.42')
  })

  it('answers a known path with a trailing slash 404 (routes are strict), not 405', async () => {
    const { app } = await makeApp([health])
    for (const method of ['GET', 'DELETE']) {
      const r = await app.request('/health/', { method })
      expect(r.status).toBe(404)
      expect(r.headers.get('allow')).toBeNull()
    }
  })

  it('turns HttpError into its problem and anything else into a 500 without a stack', async () => {
    const { app, logs } = await makeApp([echo])
    const t = await app.request('/teapot')
    expect(t.status).toBe(409)
    expect(await t.json()).toMatchObject({ status: 409, detail: 'a clear detail' })
    const b = await app.request('/boom')
    expect(b.status).toBe(500)
    const text = await b.text()
    expect(text).not.toContain('secret-internal-detail')
    expect(text).not.toMatch(/at .*\.ts/)
    expect(logs.join('')).toContain('unhandled error')
  })

  it('validates JSON bodies: 415, 400, 422, 413', async () => {
    const { app } = await makeApp([echo], { LOGIN_RATE_PER_MINUTE: '1000' })
    const post = (body: string, type = 'application/json') => app.request('/echo/7', { method: 'POST', body, headers: { 'content-type': type } })
    expect((await post('{"n":1}')).status).toBe(200)
    expect(await (await post('{"n":2}')).json()).toEqual({ id: '7', n: 2 })
    expect((await post('{"n":1}', 'text/plain')).status).toBe(415)
    expect((await post('{"n":')).status).toBe(400)
    const wrong = await post('{"n":"x"}')
    expect(wrong.status).toBe(422)
    expect((await wrong.json()).detail).toMatch(/^n: /)
    expect((await post(JSON.stringify({ n: 1, pad: 'x'.repeat(70_000) }))).status).toBe(413)
  })

  it('rate-limits per client address with Retry-After', async () => {
    const { app } = await makeApp([echo], { LOGIN_RATE_PER_MINUTE: '3' })
    const from = (remoteAddress: string) => app.request('/echo/1', { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } },
      { incoming: { socket: { remoteAddress } } } as never)
    const codes: number[] = []
    let last: Response | undefined
    for (let i = 0; i < 5; i++) {
      last = await from('192.0.2.1')
      codes.push(last.status)
    }
    expect(codes).toEqual([200, 200, 200, 429, 429])
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0)
    // Another address has its own count; the first stays limited.
    expect((await from('192.0.2.2')).status).toBe(200)
    expect((await from('192.0.2.2')).status).toBe(200)
    expect((await from('192.0.2.1')).status).toBe(429)
  })

  it('the rate limiter forgets expired windows and never tracks more than its cap', () => {
    let t = 0
    const limiter = createRateLimiter(2, 60_000, () => t, 100)
    for (let i = 0; i < 1000; i++) limiter.hit(`10.0.${i >> 8}.${i & 255}`)
    expect(limiter.size).toBe(100)
    // The newest addresses are still counted: a third attempt in the window is refused.
    expect(limiter.hit('10.0.3.231')).toBe(0)
    expect(limiter.hit('10.0.3.231')).toBeGreaterThan(0)
    // A window that ended starts again at zero, and expired ones go as new hits come.
    t += 60_000
    expect(limiter.hit('10.0.3.231')).toBe(0)
    for (let i = 0; i < 60; i++) limiter.hit(`172.16.0.${i}`)
    expect(limiter.size).toBeLessThanOrEqual(61)
  })

  it('keeps the caller token and the /login and /unlock rate limit whatever a function declares', async () => {
    // A release that marks a route public, or leaves out the rate limit of /login, changes neither.
    const open: LoaderFunction = {
      name: 'open',
      routes: [{ method: 'POST', path: '/load/:filename', public: true }, { method: 'POST', path: '/login' }],
      async fetch() { return new Response('plaintext') },
    }
    const { app } = await makeApp([health, open], { LOADER_API_TOKEN: TOKEN, LOGIN_RATE_PER_MINUTE: '2' })
    expect((await app.request('/load/x.bin', { method: 'POST' })).status).toBe(401)
    expect((await app.request('/health')).status).toBe(200)
    const login = () => app.request('/login', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` } },
      { incoming: { socket: { remoteAddress: '192.0.2.9' } } } as never)
    expect([(await login()).status, (await login()).status, (await login()).status]).toEqual([200, 200, 429])
    // …and the API description says the same.
    const doc = await (await app.request('/openapi.json', { headers: { authorization: `Bearer ${TOKEN}` } })).json()
    expect(Object.keys(doc.paths['/load/{filename}'].post.responses)).toContain('401')
    expect(Object.keys(doc.paths['/login'].post.responses)).toContain('429')
  })

  it.each(['/:p{login}', '/login/:x?'])('a login route declared as %s (it answers POST /login) is rate-limited all the same', async (path) => {
    const login: LoaderFunction = { name: 'login', routes: [{ method: 'POST', path }], async fetch() { return new Response('ok') } }
    const { app } = await makeApp([health, login], { LOGIN_RATE_PER_MINUTE: '2' })
    const once = () => app.request('/login', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } },
      { incoming: { socket: { remoteAddress: '192.0.2.9' } } } as never)
    expect([(await once()).status, (await once()).status, (await once()).status]).toEqual([200, 200, 429])
  })

  it('needs the caller token on every route but /health when one is set', async () => {
    const { app } = await makeApp([health, status], { LOADER_API_TOKEN: TOKEN })
    expect((await app.request('/health')).status).toBe(200)
    expect((await app.request('/status')).status).toBe(401)
    expect((await app.request('/status', { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401)
    const ok = await app.request('/status', { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(ok.status).toBe(200)
    expect((await ok.json()).callerAuth).toBe('token')
  })

  it('takes the Bearer scheme in any case, as HTTP auth schemes are (RFC 9110 §11.1), and nothing but the token', async () => {
    const { app } = await makeApp([health, status], { LOADER_API_TOKEN: TOKEN })
    for (const h of [`bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer  ${TOKEN}`]) {
      expect((await app.request('/status', { headers: { authorization: h } })).status).toBe(200)
    }
    for (const h of [`Basic ${TOKEN}`, `Bearer${TOKEN}`, TOKEN, `Bearer ${TOKEN} x`, `Bearer x ${TOKEN}`]) {
      expect((await app.request('/status', { headers: { authorization: h } })).status).toBe(401)
    }
  })
})
