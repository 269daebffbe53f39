// The `tokens` binding: verifies (or, with no key configured, decodes) the Resource API's JWT
// and reads email and role. One verifier per process, so a JWKS_URL's keys are cached.
import { createPublicKey } from 'node:crypto'
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose'
import type { Config } from '../../shared/contract/config'
import { HttpError } from '../../shared/contract/http-error'
import type { TokenClaims, Tokens } from '../../shared/contract/tokens'
import { parseRole } from '../../shared/upstream/roles'

const EMAIL_CLAIMS = ['email', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress']
const ROLE_CLAIMS = ['role', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role']
const TOLERANCE_S = 60

const refuse = (why: string) => new HttpError(502, `the Resource API's token was refused: ${why}`, { type: 'bad-token' })

/** The token verifier of `config` (http.md §2.1). */
export function createTokens(config: Config): Tokens {
  const jwks = config.JWKS_URL ? createRemoteJWKSet(new URL(config.JWKS_URL)) : undefined
  return { read: (token, now) => readToken(token, config, now, jwks) }
}

/**
 * Verifies `token` with JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL (decodes it when none is set),
 * checks `exp` with 60 s tolerance against `now`, and reads email and role. Throws 502.
 */
async function readToken(token: string, config: Config, now: Date, jwks: ReturnType<typeof createRemoteJWKSet> | undefined): Promise<TokenClaims> {
  let payload: JWTPayload
  try {
    if (config.JWT_SECRET) {
      payload = (await jwtVerify(token, new TextEncoder().encode(config.JWT_SECRET), { currentDate: now, clockTolerance: TOLERANCE_S, algorithms: ['HS256', 'HS384', 'HS512'] })).payload
    } else if (config.JWT_PUBLIC_KEY) {
      const key = createPublicKey(config.JWT_PUBLIC_KEY.replace(/\\n/g, '\n'))
      payload = (await jwtVerify(token, key, { currentDate: now, clockTolerance: TOLERANCE_S, algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'] })).payload
    } else if (jwks) {
      payload = (await jwtVerify(token, jwks, { currentDate: now, clockTolerance: TOLERANCE_S })).payload
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
