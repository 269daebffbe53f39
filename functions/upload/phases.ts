// Where an upload's time goes, for its log line: the milliseconds of each phase, one mark after
// the other (the body streamed, the CDN's answer after it, the Resource API, the local cache).

/** A clock started now; `mark(phase)` records the time since the previous mark under `phase`. */
export function phaseClock(): { mark(phase: string): void; ms: Record<string, number> } {
  let last = performance.now()
  const ms: Record<string, number> = {}
  return {
    ms,
    mark(phase) {
      const now = performance.now()
      ms[phase] = Math.round(now - last)
      last = now
    },
  }
}
