// Constant-time check of the optional caller token (LOADER_API_TOKEN).
import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (s: string) => createHash('sha256').update(s).digest()

/** True when the `Authorization` header carries exactly `Bearer <token>`. */
export function callerTokenMatches(header: string | undefined | null, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '')
  return timingSafeEqual(digest(m ? m[1] : ''), digest(token)) && !!m
}
