// Verifies (or, with no key configured, decodes) the Resource API's JWT and reads email and role.
import { createPublicKey } from 'node:crypto'
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose'
import type { Config } from '../contract/config'
import { HttpError } from '../contract/http-error'
import { parseRole, type Role } from './roles'

const EMAIL_CLAIMS = Object.freeze(['email', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress'])
const ROLE_CLAIMS = Object.freeze(['role', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'])
const TOLERANCE_S = 60

/** What the loader reads from a token. */
export interface TokenClaims {
  email: string
  role: Role
  exp?: number
}

const refuse = (why: string) => new HttpError(502, `the Resource API's token was refused: ${why}`, { type: 'bad-token' })

/**
 * Verifies `token` with JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL (decodes it when none is set),
 * checks `exp` with 60 s tolerance against `now`, and reads email and role. Throws 502.
 */
export async function readToken(token: string, config: Config, now: Date): Promise<TokenClaims> {
  let payload: JWTPayload
  try {
    if (config.JWT_SECRET) {
      payload = (await jwtVerify(token, new TextEncoder().encode(config.JWT_SECRET), { currentDate: now, clockTolerance: TOLERANCE_S, algorithms: ['HS256', 'HS384', 'HS512'] })).payload
    } else if (config.JWT_PUBLIC_KEY) {
      const key = createPublicKey(config.JWT_PUBLIC_KEY.replace(/\\n/g, '\n'))
      payload = (await jwtVerify(token, key, { currentDate: now, clockTolerance: TOLERANCE_S, algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'] })).payload
    } else if (config.JWKS_URL) {
      payload = (await jwtVerify(token, createRemoteJWKSet(new URL(config.JWKS_URL)), { currentDate: now, clockTolerance: TOLERANCE_S })).payload
    } else {
      payload = decodeJwt(token)
      if (typeof payload.exp === 'number' && payload.exp + TOLERANCE_S < now.getTime() / 1000) throw refuse('it has expired')
    }
  } catch (e) {
    if (e instanceof HttpError) throw e
    const code = (e as { code?: string }).code ?? ''
    if (code === 'ERR_JWT_EXPIRED') throw refuse('it has expired')
    if (code.includes('SIGNATURE')) throw refuse('its signature does not verify')
    throw refuse(code ? `it does not verify (${code})` : 'it is not a valid JWT')
  }
  const email = EMAIL_CLAIMS.map((c) => payload[c]).find((v) => typeof v === 'string') as string | undefined
  const roleValue = ROLE_CLAIMS.map((c) => payload[c]).find((v) => v !== undefined)
  const role = roleValue === undefined ? 'None' : parseRole(roleValue)
  if (!email) throw refuse('it carries no email claim')
  if (!role) throw refuse(`its role ${JSON.stringify(roleValue)} is unknown`)
  return { email, role, exp: payload.exp }
}
