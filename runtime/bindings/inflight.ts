// Single flight: concurrent callers of the same key share one running promise.
import type { Inflight } from '../../shared/contract/function'

/** Creates the in-memory `inflight` binding. */
export function createInflight(): Inflight {
  const running = new Map<string, Promise<unknown>>()
  return {
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const existing = running.get(key)
      if (existing) return existing as Promise<T>
      const p = (async () => work())().finally(() => running.delete(key))
      running.set(key, p)
      return p
    },
    has: (key) => running.has(key),
  }
}
