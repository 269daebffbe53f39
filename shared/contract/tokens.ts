// The token binding's interface: verifies the Resource API's JWT; runtime/bindings/tokens.ts.
import type { Role } from '../upstream/roles'

/** What the loader reads from a token. */
export interface TokenClaims {
  email: string
  role: Role
  exp?: number
}

/**
 * Verifies tokens with JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL (decodes them when none is set).
 * A host binding: the verifier (and a JWKS_URL's key cache) lives once per process, not in
 * every function artifact.
 */
export interface Tokens {
  /** Verifies `token`, checks `exp` with 60 s tolerance against `now`, reads email and role. Throws 502. */
  read(token: string, now: Date): Promise<TokenClaims>
}
