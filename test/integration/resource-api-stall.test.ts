// The Resource API client against a real socket whose answer body stalls after its headers: the
// timeout bounds the body read too, each attempt really goes upstream, and the end is a 504.
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getKeyFragment, getResourceFile, loginUpstream, putResourceFile } from '../../shared/upstream/resource-api'
import { upstreamProblem } from '../../shared/upstream/errors'
import { makeEnv } from '../helpers/env'

let server: Server
let url: string
const seen: string[] = []
const open = new Set<ServerResponse>()

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.url ?? '')
    req.resume()
    const json = req.url === '/binary-split/key-fragment'
    // Headers and the first bytes, then nothing more (the socket stays open).
    res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/octet-stream', 'content-length': '100' })
    res.write(json ? '{"keyFragment":"ab' : 'first bytes')
    open.add(res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  for (const res of open) res.destroy()
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

describe('a Resource API answer whose body stalls', () => {
  it('is a timeout per attempt, retried API_READ_RETRIES times, then 504 (small file)', async () => {
    const { env } = await makeEnv({ RESOURCE_API_URL: url, API_TIMEOUT_MS: '500', API_READ_RETRIES: '1' })
    seen.length = 0
    const e = await getResourceFile(env, 'token', 'models', 'x.bin', 'pw', 'hw').then(() => null, (x: unknown) => x)
    expect(upstreamProblem('the Resource API', 'x.bin', e).status).toBe(504)
    expect(seen).toEqual(['/resources/get/models', '/resources/get/models'])
  })

  it('is a timeout per attempt, retried API_READ_RETRIES times, then 504 (key fragment)', async () => {
    const { env } = await makeEnv({ RESOURCE_API_URL: url, API_TIMEOUT_MS: '500', API_READ_RETRIES: '1' })
    seen.length = 0
    const e = await getKeyFragment(env, 'token').then(() => null, (x: unknown) => x)
    expect(upstreamProblem('the Resource API', 'the key fragment', e).status).toBe(504)
    expect(seen).toEqual(['/binary-split/key-fragment', '/binary-split/key-fragment'])
  })
})

describe('a Resource API answer whose body stalls, on the calls that are not retried', () => {
  it('the login is a timeout (504) after API_TIMEOUT_MS, not undici\'s 300 s body wait', async () => {
    const { env } = await makeEnv({ RESOURCE_API_URL: url, API_TIMEOUT_MS: '500' })
    seen.length = 0
    const e = await loginUpstream(env, 'a@example.com', 'pw').then(() => null, (x: unknown) => x)
    expect(upstreamProblem('the Resource API', 'the login', e).status).toBe(504)
    expect(seen).toEqual(['/login'])
  })

  it('a small-part write answered 200 whose body then stalls is done (the status decides), not hung, and not repeated', async () => {
    const { env } = await makeEnv({ RESOURCE_API_URL: url, API_TIMEOUT_MS: '60000' })
    seen.length = 0
    await putResourceFile(env, 'token', 'models', 'x.bin.small', Buffer.from('small'))
    expect(seen).toEqual(['/resources/models'])
  })
})

describe('a Resource API answer that never ends (a flood of bytes)', () => {
  let flood: Server
  let floodUrl: string
  let sent = 0
  let finished = false
  const TOTAL = 256 << 20
  beforeAll(async () => {
    flood = createServer((req, res) => {
      req.resume()
      sent = 0
      finished = false
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"token":"')
      const chunk = Buffer.alloc(1 << 16, 'a')
      const pump = () => {
        while (sent < TOTAL) {
          sent += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end('"}')
        finished = true
      }
      pump()
    })
    await new Promise<void>((r) => flood.listen(0, '127.0.0.1', r))
    floodUrl = `http://127.0.0.1:${(flood.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    flood.closeAllConnections()
    await new Promise((r) => flood.close(r))
  })

  it.each(['login', 'key fragment'] as const)('the %s answer is refused past a small limit (502), not read whole into memory', async (call) => {
    const { env } = await makeEnv({ RESOURCE_API_URL: floodUrl, API_TIMEOUT_MS: '60000', API_READ_RETRIES: '0' })
    const e = await (call === 'login' ? loginUpstream(env, 'a@example.com', 'pw') : getKeyFragment(env, 'token')).then(() => null, (x: unknown) => x)
    expect(upstreamProblem('the Resource API', call, e).status).toBe(502)
    expect(finished).toBe(false)
  })
  it('a small-part write answered 200 with a flood is done, and the flood is not read', async () => {
    const { env } = await makeEnv({ RESOURCE_API_URL: floodUrl, API_TIMEOUT_MS: '60000' })
    await putResourceFile(env, 'token', 'models', 'x.bin.small', Buffer.from('small'))
    expect(finished).toBe(false)
  })
})

describe('a Resource API that redirects', () => {
  it.each([307, 308, 302])('a %i on the login is not followed: the password never goes to another address', async (status) => {
    const got: string[] = []
    const elsewhere = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => { body += c })
      req.on('end', () => { got.push(`${req.method} ${req.url} ${body}`); res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"x"}') })
    })
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r))
    const api = createServer((req, res) => {
      req.resume()
      res.writeHead(status, { location: `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/collect` }).end()
    })
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r))
    try {
      const { env } = await makeEnv({ RESOURCE_API_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}` })
      const e = await loginUpstream(env, 'a@example.com', 'the-password').then(() => null, (x: unknown) => x)
      const problem = upstreamProblem('the Resource API', 'the login', e)
      expect(problem.status).toBe(502)
      expect(problem.message).toMatch(/redirect/)
      expect(got).toEqual([])
    } finally {
      for (const s of [elsewhere, api]) {
        s.closeAllConnections()
        await new Promise((r) => s.close(r))
      }
    }
  })
})
