// The `metrics` binding's interface: what functions and bindings report; prom-client stays in the runtime.

/** Outcome of a Resource API call: the HTTP status it answered, or why it did not answer. */
export type ApiOutcome = `${number}` | 'timeout' | 'error'

/** The Resource API calls the loader makes (a bounded label set). */
export type ApiCall = 'login' | 'get_resource' | 'put_resource' | 'key_fragment' | 'other'

/**
 * Counters and histograms the flows feed. Every method is cheap and never throws; labels are
 * fixed sets (never a filename). The runtime's implementation is runtime/bindings/metrics.ts.
 */
export interface Metrics {
  /** A load found its big part in the cache (`hit`) or had to fetch it (`miss`). */
  cacheLookup(result: 'hit' | 'miss'): void
  /** A cached big part was evicted (LRU). */
  cacheEvicted(bytes: number): void
  /** One finished big-part download: `ok` (verified and committed) or `error`, its bytes and duration. */
  cdnDownload(outcome: 'ok' | 'error', bytes: number, seconds: number): void
  /** One more attempt of a big-part download after a failed one. */
  cdnRetry(): void
  /** An attempt resumed a partial download with `Range`. */
  cdnResume(): void
  /** A downloaded big part failed its sha256 (or manifest) check and was discarded. */
  cdnVerificationFailure(): void
  /** One Resource API request (each retry counts) and how it ended. */
  apiCall(call: ApiCall, outcome: ApiOutcome): void
}
