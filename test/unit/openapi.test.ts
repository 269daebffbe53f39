// /openapi.json over the source functions: valid OpenAPI 3.1, every route with its problems, rebuilt with the functions.
import { Validator } from '@seriousme/openapi-schema-validator'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import health from '../../functions/health/index'
import status from '../../functions/status/index'
import login from '../../functions/login/index'
import load from '../../functions/load/index'
import upload from '../../functions/upload/index'
import unlock from '../../functions/unlock/index'
import { defineFunction, type LoaderFunction } from '../../shared/contract/function'
import { json } from '../../shared/http/json'
import { createApp } from '../../runtime/app'
import { createRateLimiter } from '../../runtime/middleware/rate-limit'
import { answerChecker } from '../helpers/openapi'
import { fromSource, makeApp } from '../helpers/env'

const ALL = [health, status, login, load, upload, unlock]
const TOKEN = 'caller-token-0123456789'
const AUTH = { authorization: `Bearer ${TOKEN}` }

describe('openapi.json', () => {
  it('is a valid OpenAPI 3.1 document with every route, its schemas and the runtime\'s problems', async () => {
    const { app } = await makeApp(ALL, { LOADER_API_TOKEN: TOKEN })
    const r = await app.request('/openapi.json', { headers: AUTH })
    expect(r.status).toBe(200)
    const doc = await r.json()
    const result = await new Validator().validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    const ops = Object.entries(doc.paths).flatMap(([p, o]) => Object.keys(o as object).map((m) => `${m.toUpperCase()} ${p}`)).sort()
    expect(ops).toEqual(['GET /health', 'GET /metrics', 'GET /openapi.json', 'GET /status', 'GET /unlock/status', 'POST /load/{filename}',
      'POST /login', 'POST /logout', 'POST /prefetch/{filename}', 'POST /unlock', 'POST /upload/{filename}'])
    const loginOp = doc.paths['/login'].post
    expect(loginOp.requestBody.content['application/json'].schema).toMatchObject({ type: 'object', required: ['email', 'password'],
      properties: { email: { type: 'string', format: 'email', maxLength: 320 }, password: { type: 'string', minLength: 1 } } })
    expect(Object.keys(loginOp.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '413', '415', '422', '429', '500', '502', '503', '504']))
    expect(loginOp.security).toEqual([{ callerToken: [] }])
    expect(doc.paths['/health'].get.security).toEqual([])
    expect(doc.paths['/health'].get.responses['401']).toBeUndefined()
    expect(Object.keys(doc.paths['/load/{filename}'].post.responses)).toEqual(expect.arrayContaining(['200', '401', '403', '404', '422', '502', '503', '507']))
    expect(doc.paths['/upload/{filename}'].post.requestBody.content).toHaveProperty('multipart/form-data')
    expect(doc.paths['/upload/{filename}'].post.responses['413']).toBeDefined()
    // Every operation documents the 405 another method gets, with its Allow header.
    for (const [p, o] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(o as Record<string, { responses: Record<string, { headers?: object }> }>)) {
        expect(op.responses['405']?.headers, `${m} ${p}`).toHaveProperty('allow')
      }
    }
    // An upload answers these (a Resource API 404 to its writes is a 502, never a 404).
    expect(Object.keys(doc.paths['/upload/{filename}'].post.responses).sort()).toEqual(
      ['201', '400', '401', '403', '405', '408', '409', '413', '415', '422', '500', '502', '503', '504', '507'])
    expect(doc.paths['/upload/{filename}'].post.parameters[0]).toMatchObject({ name: 'filename', in: 'path', required: true, schema: { pattern: expect.any(String) } })
  })

  it('is rebuilt from the functions of each app, so a redeployed function updates it', async () => {
    const v1 = defineFunction({ name: 'extra', routes: [{ method: 'GET', path: '/extra', body: 'none',
      doc: { summary: 'v1', answers: { 200: { description: 'ok', content: { 'application/json': v.object({ a: v.string() }) } } }, problems: {} } }],
      async fetch() { return json({ a: 'x' }) } })
    const v2: LoaderFunction = { ...v1, routes: [{ ...v1.routes[0], doc: { ...v1.routes[0].doc!, summary: 'v2' } }, { method: 'POST', path: '/extra/:id', body: 'none' }] }
    const { app, env } = await makeApp([health, v1])
    expect((await (await app.request('/openapi.json')).json()).paths['/extra'].get.summary).toBe('v1')
    const next = createApp(fromSource([health, v2]), { env, limiter: createRateLimiter(10), transfers: { active: 0 } })
    const doc = await (await next.request('/openapi.json')).json()
    expect(doc.paths['/extra'].get.summary).toBe('v2')
    expect(doc.paths['/extra/{id}'].post).toBeDefined()
  })

  it('a function whose route doc cannot be read (a deployed release\'s own) is listed undocumented, the rest as before', async () => {
    const bad = defineFunction({ name: 'odd', routes: [{ method: 'GET', path: '/odd', body: 'none',
      doc: { summary: 'odd', answers: null, problems: {} } as never }], async fetch() { return json({}) } })
    const { app } = await makeApp([health, bad])
    const r = await app.request('/openapi.json')
    expect(r.status).toBe(200)
    const doc = await r.json()
    expect(doc.paths['/odd'].get).toMatchObject({ summary: 'GET /odd', description: expect.stringMatching(/documentation could not be read/) })
    expect(doc.paths['/health'].get.summary).not.toBe('GET /health')
    expect((await new Validator().validate(doc)).valid).toBe(true)
  })

  it('in-process answers of the routes that need no upstream match it', async () => {
    const { app } = await makeApp(ALL, { LOADER_API_TOKEN: TOKEN, RESOURCE_API_URL: 'http://resource-api.test' })
    const api = answerChecker(await (await app.request('/openapi.json', { headers: AUTH })).json())
    const call = async (method: string, path: string, url: string, init: RequestInit = {}) => {
      const r = await app.request(url, { ...init, method })
      const a = { status: r.status, contentType: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()) }
      api.check(method, path, a)
      return a.status
    }
    const body = (b: string, type = 'application/json') => ({ headers: { 'content-type': type, ...AUTH }, body: b })
    expect(await call('GET', '/health', '/health')).toBe(200)
    expect(await call('GET', '/status', '/status', { headers: AUTH })).toBe(200)
    expect(await call('GET', '/status', '/status')).toBe(401)
    expect(await call('POST', '/logout', '/logout', { headers: AUTH })).toBe(200)
    expect(await call('GET', '/unlock/status', '/unlock/status', { headers: AUTH })).toBe(200)
    expect(await call('POST', '/login', '/login', body('{"email":'))).toBe(400)
    expect(await call('POST', '/login', '/login', body('{}', 'text/plain'))).toBe(415)
    expect(await call('POST', '/login', '/login', body('{"email":"x"}'))).toBe(422)
    expect(await call('POST', '/login', '/login', body(JSON.stringify({ pad: 'x'.repeat(70_000) })))).toBe(413)
    expect(await call('POST', '/load/{filename}', '/load/a..b', body('{}'))).toBe(422)
    expect(await call('POST', '/load/{filename}', '/load/a.bin', body('{}'))).toBe(401)
    expect(await call('POST', '/upload/{filename}', '/upload/a.bin', body('x', 'text/plain'))).toBe(401)
    expect(await call('POST', '/unlock', '/unlock', body('{"email":"a@b.c","password":""}'))).toBe(422)
    expect(await call('GET', '/metrics', '/metrics', { headers: AUTH })).toBe(200)
  })
})
