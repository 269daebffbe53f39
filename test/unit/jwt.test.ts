// The JWT modes other than JWT_SECRET: JWT_PUBLIC_KEY and JWKS_URL (served through MSW), `exp`, issuer and audience.
import { generateKeyPairSync } from 'node:crypto'
import { http, HttpResponse } from 'msw'
import { exportJWK, SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { API } from '../mocks/resource-api'
import { server } from '../mocks/server'
import { contractWorld, USER } from '../helpers/contract'
import { parseConfig } from '../../runtime/config'
import { SALTS } from '../helpers/vectors'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const pem = (k: typeof rsa.publicKey) => k.export({ type: 'spki', format: 'pem' }) as string
const JWKS = 'https://idp.test/.well-known/jwks.json'

/** A token of the origin's user, as the Resource API would answer, with these claims and key. */
const token = (key: typeof rsa.privateKey, alg: string, claims: Record<string, unknown> = {}, exp: number | null = Math.floor(Date.now() / 1000) + 600, kid?: string) => {
  const t = new SignJWT({ email: USER.email, role: '1000', ...claims }).setProtectedHeader({ alg, kid })
  return (exp === null ? t : t.setExpirationTime(exp)).sign(key)
}
const answerLogin = (t: string) => server.use(http.post(`${API}/login`, () => HttpResponse.json({ token: t })))
const detail = async (r: Response) => (await r.json()).detail as string

describe('JWT_PUBLIC_KEY', () => {
  const origin = { signingKey: { alg: 'RS256', privateKey: rsa.privateKey, publicKey: rsa.publicKey } }

  it('verifies RS256 tokens with the PEM (given on one line with literal \\n) and says "verified"', async () => {
    const w = await contractWorld({ JWT_PUBLIC_KEY: pem(rsa.publicKey).trim().replace(/\n/g, '\\n') }, 'ApiAdmin', origin)
    expect((await w.login()).status).toBe(200)
    expect((await (await w.app.request('/status')).json()).jwt).toBe('verified')
  })

  it('refuses a token signed by another key, and a well-signed token without exp (502)', async () => {
    const w = await contractWorld({ JWT_PUBLIC_KEY: pem(rsa.publicKey) }, 'ApiAdmin', origin)
    answerLogin(await token(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'RS256'))
    const forged = await w.login()
    expect(forged.status).toBe(502)
    expect(await detail(forged)).toMatch(/signature does not verify/)
    answerLogin(await token(rsa.privateKey, 'RS256', {}, null))
    const forever = await w.login()
    expect(forever.status).toBe(502)
    expect(await detail(forever)).toMatch(/no exp claim/)
    expect((await (await w.app.request('/status')).json()).authenticated).toBe(false)
  })

  it('checks JWT_ISSUER and JWT_AUDIENCE when they are set', async () => {
    const w = await contractWorld({ JWT_PUBLIC_KEY: pem(rsa.publicKey), JWT_ISSUER: 'https://api.example', JWT_AUDIENCE: 'edge-loader' }, 'ApiAdmin', origin)
    answerLogin(await token(rsa.privateKey, 'RS256', { iss: 'https://other.example', aud: 'edge-loader' }))
    const wrongIss = await w.login()
    expect(wrongIss.status).toBe(502)
    expect(await detail(wrongIss)).toMatch(/iss claim does not match JWT_ISSUER/)
    answerLogin(await token(rsa.privateKey, 'RS256', { iss: 'https://api.example', aud: 'someone-else' }))
    const wrongAud = await w.login()
    expect(wrongAud.status).toBe(502)
    expect(await detail(wrongAud)).toMatch(/aud claim does not match JWT_AUDIENCE/)
    answerLogin(await token(rsa.privateKey, 'RS256', { iss: 'https://api.example', aud: ['x', 'edge-loader'] }))
    expect((await w.login()).status).toBe(200)
  })

  it('stops the start when the key cannot be used, naming the variable', () => {
    const bad = (value: string) => () => parseConfig({ ...SALTS, JWT_PUBLIC_KEY: value })
    expect(bad('not a key')).toThrow(/^JWT_PUBLIC_KEY: is not a PEM public key/)
    expect(bad(pem(rsa.publicKey).replace(/[A-Za-z]{8}\n/, 'AAAAAAAA\n').slice(0, 200))).toThrow(/^JWT_PUBLIC_KEY: /)
    expect(bad(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)).toThrow(/^JWT_PUBLIC_KEY: is a private key/)
    expect(bad(pem(generateKeyPairSync('ed25519').publicKey))).toThrow(/^JWT_PUBLIC_KEY: is a ed25519 key/)
    expect(parseConfig({ ...SALTS, JWT_PUBLIC_KEY: pem(ec.publicKey) }).JWT_PUBLIC_KEY).toContain('BEGIN PUBLIC KEY')
  })
})

describe('JWKS_URL', () => {
  const origin = { signingKey: { alg: 'ES256', privateKey: ec.privateKey, publicKey: ec.publicKey, kid: 'k1' } }
  const serveJwks = async (keys: object[], calls: string[] = []) => {
    server.use(http.get(JWKS, ({ request }) => { calls.push(request.url); return HttpResponse.json({ keys }) }))
    return calls
  }

  it('verifies tokens with the key of their kid fetched from JWKS_URL', async () => {
    const w = await contractWorld({ JWKS_URL: JWKS }, 'ApiAdmin', origin)
    const calls = await serveJwks([{ ...await exportJWK(stranger.publicKey), kid: 'k0', alg: 'ES256' }, { ...await exportJWK(ec.publicKey), kid: 'k1', alg: 'ES256' }])
    expect((await w.login()).status).toBe(200)
    expect(calls.length).toBeGreaterThan(0)
    expect((await (await w.app.request('/status')).json()).jwt).toBe('verified')
  })

  it('refuses a token no key of the set verifies, and one without exp', async () => {
    const w = await contractWorld({ JWKS_URL: JWKS }, 'ApiAdmin', origin)
    await serveJwks([{ ...await exportJWK(ec.publicKey), kid: 'k1', alg: 'ES256' }])
    answerLogin(await token(stranger.privateKey, 'ES256', {}, undefined, 'k1'))
    const forged = await w.login()
    expect(forged.status).toBe(502)
    expect(await detail(forged)).toMatch(/signature does not verify/)
    answerLogin(await token(stranger.privateKey, 'ES256', {}, undefined, 'k9'))
    expect(await detail(await w.login())).toMatch(/no key of JWKS_URL matches it/)
    answerLogin(await token(ec.privateKey, 'ES256', {}, null, 'k1'))
    expect(await detail(await w.login())).toMatch(/no exp claim/)
  })

  it('a JWKS that cannot be fetched is a clear 502, not a crash', async () => {
    const w = await contractWorld({ JWKS_URL: JWKS }, 'ApiAdmin', origin)
    server.use(http.get(JWKS, () => HttpResponse.error()))
    const down = await w.login()
    expect(down.status).toBe(502)
    expect(await detail(down)).toMatch(/JWKS_URL could not be fetched/)
    server.use(http.get(JWKS, () => HttpResponse.json({ error: 'x' }, { status: 500 })))
    expect(await detail(await w.login())).toMatch(/JWKS_URL could not be fetched/)
  })

  it('stops the start on a URL that cannot be used: malformed, or plain http off loopback', () => {
    const bad = (value: string) => () => parseConfig({ ...SALTS, JWKS_URL: value })
    expect(bad('jwks.json')).toThrow(/^JWKS_URL: /)
    expect(bad('http://idp.example/jwks.json')).toThrow(/^JWKS_URL: expected an https URL/)
    expect(parseConfig({ ...SALTS, JWKS_URL: 'http://127.0.0.1:9000/jwks.json' }).JWKS_URL).toBe('http://127.0.0.1:9000/jwks.json')
  })
})
