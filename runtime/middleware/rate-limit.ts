// Fixed-window rate limiting per client address (login and unlock attempts): 429 with Retry-After.
import type { MiddlewareHandler } from 'hono'
import { HttpError } from '../../shared/contract/http-error'
import { clientAddress } from './client-address'

/** Counts attempts per key in one-minute windows. */
export function createRateLimiter(perMinute: number, windowMs = 60_000, now: () => number = Date.now) {
  const windows = new Map<string, { count: number; resetAt: number }>()
  return {
    /** Counts one attempt; returns the seconds to wait when over the limit, else 0. */
    hit(key: string): number {
      const t = now()
      if (windows.size > 10_000) for (const [k, w] of windows) if (w.resetAt <= t) windows.delete(k)
      let w = windows.get(key)
      if (!w || w.resetAt <= t) {
        w = { count: 0, resetAt: t + windowMs }
        windows.set(key, w)
      }
      w.count++
      return w.count > perMinute ? Math.max(1, Math.ceil((w.resetAt - t) / 1000)) : 0
    },
  }
}

/** Counts every attempt of the client address; past the limit 429 with Retry-After. */
export const rateLimit = (limiter: ReturnType<typeof createRateLimiter>): MiddlewareHandler => async (c, next) => {
  const wait = limiter.hit(clientAddress(c))
  if (wait) throw new HttpError(429, `too many attempts from this address; try again in ${wait} s`, { type: 'rate-limited', headers: { 'retry-after': String(wait) } })
  await next()
}
