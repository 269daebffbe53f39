// The optional caller token (LOADER_API_TOKEN): constant-time check, 401 without it; a verified
// client certificate (mutual TLS) is a caller credential on its own.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { HttpError } from '../../shared/contract/http-error'
import { clientCertificateSubject } from './client-certificate'

const digest = (s: string) => createHash('sha256').update(s).digest()

/** True when the `Authorization` header carries exactly `Bearer <token>`. */
export function callerTokenMatches(header: string | undefined | null, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '')
  return timingSafeEqual(digest(m ? m[1] : ''), digest(token)) && !!m
}

/** Refuses requests without `Authorization: Bearer <token>`, unless the caller's certificate was verified. */
export const callerToken = (token: string): MiddlewareHandler => async (c, next) => {
  if (clientCertificateSubject(c) === undefined && !callerTokenMatches(c.req.header('authorization'), token)) {
    throw new HttpError(401, 'this loader needs Authorization: Bearer <LOADER_API_TOKEN>', { type: 'caller-token', headers: { 'www-authenticate': 'Bearer' } })
  }
  await next()
}
