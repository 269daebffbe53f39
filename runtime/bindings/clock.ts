// A clock corrected by the offset to upstream `Date` headers (boards without an RTC).
import type { Clock } from '../../shared/contract/function'

/** Creates the `clock` binding; offsets under 2 s are ignored (Date has 1 s resolution). */
export function createClock(system: () => number = Date.now): Clock {
  let offset = 0
  return {
    now: () => new Date(system() + offset),
    offsetMs: () => offset,
    observe(header) {
      if (!header) return
      const upstream = Date.parse(header)
      if (Number.isNaN(upstream)) return
      const delta = upstream - system()
      offset = Math.abs(delta) < 2000 ? 0 : delta
    },
  }
}
