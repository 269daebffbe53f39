// The optional caller token (LOADER_API_TOKEN): constant-time check, 401 without it. With mutual TLS
// as well, the handshake has already verified the certificate: a request must carry both.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { HttpError } from '../../shared/contract/http-error'

const digest = (s: string) => createHash('sha256').update(s).digest()

/** True when the `Authorization` header carries exactly `Bearer <token>` (the scheme in any case, RFC 9110 §11.1). */
export function callerTokenMatches(header: string | undefined | null, token: string): boolean {
  const m = /^Bearer +(.+)$/i.exec(header ?? '')
  return timingSafeEqual(digest(m ? m[1] : ''), digest(token)) && !!m
}

/** Refuses requests without `Authorization: Bearer <token>` (a verified client certificate does not replace it). */
export const callerToken = (token: string): MiddlewareHandler => async (c, next) => {
  if (!callerTokenMatches(c.req.header('authorization'), token)) {
    throw new HttpError(401, 'this loader needs Authorization: Bearer <LOADER_API_TOKEN>', { type: 'caller-token', headers: { 'www-authenticate': 'Bearer' } })
  }
  await next()
}
