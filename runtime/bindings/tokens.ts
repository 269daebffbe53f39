// The `tokens` binding: verifies (or, with no key configured, decodes) the Resource API's JWT
// and reads email and role. One verifier per process, so a JWKS_URL's keys are cached.
import { createPublicKey } from 'node:crypto'
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose'
import type { Config } from '../../shared/contract/config'
import { HttpError } from '../../shared/contract/http-error'
import type { TokenClaims, Tokens } from '../../shared/contract/tokens'
import { parseRole } from '../../shared/upstream/roles'

const EMAIL_CLAIMS = Object.freeze(['email', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress'])
const ROLE_CLAIMS = Object.freeze(['role', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'])
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
  // A verified token must carry `exp` (a token valid forever is refused), and the issuer and
  // audience the configuration names, when it names them.
  const checks = {
    currentDate: now, clockTolerance: TOLERANCE_S, requiredClaims: ['exp'],
    ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
  }
  try {
    if (config.JWT_SECRET) {
      payload = (await jwtVerify(token, new TextEncoder().encode(config.JWT_SECRET), { ...checks, algorithms: ['HS256', 'HS384', 'HS512'] })).payload
    } else if (config.JWT_PUBLIC_KEY) {
      const key = createPublicKey(config.JWT_PUBLIC_KEY.replace(/\\n/g, '\n'))
      payload = (await jwtVerify(token, key, { ...checks, algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'] })).payload
    } else if (jwks) {
      payload = (await jwtVerify(token, jwks, { ...checks, algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'] })).payload
    } else {
      payload = decodeJwt(token)
      if (typeof payload.exp === 'number' && payload.exp + TOLERANCE_S < now.getTime() / 1000) throw refuse('it has expired')
      if (config.JWT_ISSUER && payload.iss !== config.JWT_ISSUER) throw refuse('its iss claim does not match JWT_ISSUER')
      if (config.JWT_AUDIENCE && ![payload.aud].flat().includes(config.JWT_AUDIENCE)) throw refuse('its aud claim does not match JWT_AUDIENCE')
    }
  } catch (e) {
    if (e instanceof HttpError) throw e
    const { code = '', claim, reason } = e as { code?: string; claim?: string; reason?: string }
    if (code === 'ERR_JWT_EXPIRED') throw refuse('it has expired')
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim) {
      const setting = claim === 'iss' ? ' JWT_ISSUER' : claim === 'aud' ? ' JWT_AUDIENCE' : ''
      throw refuse(reason === 'missing' ? `it has no ${claim} claim` : `its ${claim} claim does not match${setting}`)
    }
    if (code.includes('SIGNATURE')) throw refuse('its signature does not verify')
    // An unreachable or broken JWKS (fetch fails, times out, answers non-200 or not a key set).
    if (config.JWKS_URL && (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JOSE_GENERIC' || code === 'ERR_JWKS_INVALID' || !code)) {
      throw new HttpError(502, 'the keys at JWKS_URL could not be fetched to verify the Resource API\'s token', { type: 'bad-token' })
    }
    if (code === 'ERR_JWKS_NO_MATCHING_KEY') throw refuse('no key of JWKS_URL matches it')
    throw refuse(code ? `it does not verify (${code})` : 'it is not a valid JWT')
  }
  const email = EMAIL_CLAIMS.map((c) => payload[c]).find((v) => typeof v === 'string') as string | undefined
  const roleValue = ROLE_CLAIMS.map((c) => payload[c]).find((v) => v !== undefined)
  const role = roleValue === undefined ? 'None' : parseRole(roleValue)
  if (!email) throw refuse('it carries no email claim')
  if (!role) throw refuse(`its role ${JSON.stringify(roleValue)} is unknown`)
  return { email, role, exp: payload.exp }
}
