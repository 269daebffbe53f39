// The built runtime verifying the Resource API's tokens with a JWKS (a real local server) and with JWT_PUBLIC_KEY.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post, startStack, type Stack } from '../helpers/stack'
import { SALTS } from '../helpers/vectors'

const USER = ['jwks-admin@example.com', 'jwks-admin-pass']
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex')

let jwks: Server
let jwksUrl: string
let jwksUp = true
let s: Stack

beforeAll(async () => {
  const jwk = { ...await exportJWK(key.publicKey), kid: 'edge-1', alg: 'ES256', use: 'sig' }
  jwks = createServer((_req, res) => {
    if (!jwksUp) return res.writeHead(503).end()
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r))
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`
  s = await startStack({ [USER[0]]: [USER[1], 'Admin'] }, { JWT_SECRET: '', JWKS_URL: jwksUrl }, SALTS,
    { signingKey: { alg: 'ES256', privateKey: key.privateKey, publicKey: key.publicKey, kid: 'edge-1' } })
})
afterAll(async () => {
  await s?.stop()
  jwks?.close()
})

const login = () => post(s.loader.url, '/login', { email: USER[0], password: USER[1] })

describe('JWKS_URL', () => {
  it('logs in with ES256 tokens verified against the key set, then uploads and loads', async () => {
    expect((await login()).status).toBe(200)
    expect((await (await fetch(`${s.loader.url}/status`)).json()).jwt).toBe('verified')
    const data = randomBytes(100_000)
    const up = await fetch(`${s.loader.url}/upload/jwks.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) })
    expect(up.status).toBe(201)
    const r = await post(s.loader.url, '/load/jwks.bin', {})
    expect(r.status).toBe(200)
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(data))
  })

  it('starts while the key set cannot be reached (a device booting offline); login says why until it can', async () => {
    jwksUp = false
    await s.restartLoader()
    expect((await fetch(`${s.loader.url}/health`)).status).toBe(200)
    const r = await login()
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/JWKS_URL could not be fetched/)
    jwksUp = true
    expect((await login()).status).toBe(200)
  })
})

describe('JWT_PUBLIC_KEY', () => {
  it('verifies the same tokens with the PEM, and refuses them with another key', async () => {
    const pem = key.publicKey.export({ type: 'spki', format: 'pem' }) as string
    await s.restartLoader({ JWKS_URL: '', JWT_PUBLIC_KEY: pem })
    expect((await login()).status).toBe(200)
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string
    await s.restartLoader({ JWKS_URL: '', JWT_PUBLIC_KEY: other })
    const r = await login()
    expect(r.status).toBe(502)
    expect((await r.json()).detail).toMatch(/signature does not verify/)
  })
})
