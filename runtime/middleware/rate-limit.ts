// Fixed-window rate limiting per client address (login and unlock attempts): 429 with Retry-After.
// Memory is bounded (at most `maxTracked` addresses) and every hit costs O(1).
import type { MiddlewareHandler } from 'hono'
import { HttpError } from '../../shared/contract/http-error'
import { clientAddress } from './client-address'

/** Addresses tracked at once by default; past it the oldest window is forgotten. */
export const MAX_TRACKED = 10_000

/**
 * Counts attempts per key in fixed windows. The map is kept in the order the windows began
 * (a renewed window is re-inserted at the end), so expired windows are always at its front:
 * each hit drops at most two of them and, when `maxTracked` keys are held, the oldest one.
 */
export function createRateLimiter(perMinute: number, windowMs = 60_000, now: () => number = Date.now, maxTracked = MAX_TRACKED) {
  const windows = new Map<string, { count: number; resetAt: number }>()
  const dropOldest = () => windows.delete(windows.keys().next().value as string)
  return {
    /** Counts one attempt; returns the seconds to wait when over the limit, else 0. */
    hit(key: string): number {
      const t = now()
      for (let i = 0; i < 2; i++) {
        const first = windows.values().next().value
        if (!first || first.resetAt > t) break
        dropOldest()
      }
      let w = windows.get(key)
      if (w && w.resetAt <= t) {
        windows.delete(key)
        w = undefined
      }
      if (!w) {
        if (windows.size >= maxTracked) dropOldest()
        w = { count: 0, resetAt: t + windowMs }
        windows.set(key, w)
      }
      w.count++
      return w.count > perMinute ? Math.max(1, Math.ceil((w.resetAt - t) / 1000)) : 0
    },
    /** Addresses currently tracked. */
    get size() { return windows.size },
  }
}

/** Counts every attempt of the client address; past the limit 429 with Retry-After. */
export const rateLimit = (limiter: ReturnType<typeof createRateLimiter>): MiddlewareHandler => async (c, next) => {
  const wait = limiter.hit(clientAddress(c))
  if (wait) throw new HttpError(429, `too many attempts from this address; try again in ${wait} s`, { type: 'rate-limited', headers: { 'retry-after': String(wait) } })
  await next()
}
