// An upstream whose TLS certificate is not trusted (a private CA without NODE_EXTRA_CA_CERTS, an
// expired or wrongly named certificate) is a clear 502 that says so and names the reason, for both
// kinds of upstream call (fetch/ofetch and node:https), instead of "could not be reached".
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { upstreamProblem } from '../../shared/upstream/errors'
import { nodeRequest } from '../../shared/upstream/node-request'
import { makeCa, type Ca } from '../helpers/tls'
import { server as msw } from '../mocks/server'

let ca: Ca
let srv: Server
let url: string
beforeAll(async () => {
  msw.close() // real sockets here
  ca = makeCa('Untrusted Test CA')
  const pair = ca.issue('server', 'server')
  srv = createServer({ cert: pair.certPem, key: pair.keyPem }, (_q, s) => s.end('ok'))
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}/x`
})
afterAll(() => {
  srv?.close()
  ca?.remove()
  msw.listen({ onUnhandledRequest: 'error' })
})

const caught = async (p: Promise<unknown>) => { try { await p } catch (e) { return e } throw new Error('no error') }

describe('an untrusted upstream certificate', () => {
  it.each(['fetch', 'node:https'])('via %s: 502 naming the certificate problem and NODE_EXTRA_CA_CERTS', async (via) => {
    const e = await caught(via === 'fetch' ? fetch(url) : nodeRequest({ method: 'GET', url, timeoutMs: 5000 }))
    const p = upstreamProblem('the CDN', 'the big-part download', e)
    expect(p.status).toBe(502)
    expect(p.message).toMatch(/the CDN's TLS certificate was not accepted for the big-part download \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\).*NODE_EXTRA_CA_CERTS/)
  })

  it('a plain network failure still says it could not be reached', async () => {
    const e = await caught(fetch('http://127.0.0.1:9/x'))
    expect(upstreamProblem('the CDN', 'the big-part download', e).message).toBe('the CDN could not be reached for the big-part download')
  })
})
