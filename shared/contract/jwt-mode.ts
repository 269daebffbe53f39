// How the Resource API's tokens are checked under a configuration (no valibot: status bundles it).
import type { Config } from './config'

/** `verified` when JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL is set, else `unverified`. */
export const jwtMode = (c: Pick<Config, 'JWT_SECRET' | 'JWT_PUBLIC_KEY' | 'JWKS_URL'>): 'verified' | 'unverified' =>
  (c.JWT_SECRET || c.JWT_PUBLIC_KEY || c.JWKS_URL ? 'verified' : 'unverified')
