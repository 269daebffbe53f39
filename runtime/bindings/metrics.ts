// The `metrics` binding on prom-client: counters the flows report, plus what the runtime samples at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Storage } from 'unstorage'
import type { FunctionInfo } from '../../shared/contract/function'
import type { Metrics } from '../../shared/contract/metrics'
import { readUnlock, type UnlockPhase } from '../../shared/contract/unlock-state'

const PREFIX = 'loader_'
const UNLOCK_STATES: UnlockPhase[] = ['idle', 'authenticating', 'fetching_key', 'decrypting', 'loading', 'ready', 'error']

/** What the runtime samples when /metrics is scraped. */
export interface MetricsSources {
  version: string
  /** The cache's use, as /status reports it: what counts against CACHE_MAX_BYTES (cached big parts and partial downloads) and the cached parts. */
  cacheUsage(): Promise<{ bytes: number; entries: number }>
  cacheMaxBytes: number
  state: Storage
  functions(): FunctionInfo[]
}

/** Labels of one finished request. */
export interface RequestSample {
  fn: string
  route: string
  method: string
  status: number
  seconds: number
  bytesIn: number
  bytesOut: number
}

/** The binding plus what only the runtime uses: the registry and the request counters. */
export interface RuntimeMetrics extends Metrics {
  readonly registry: Registry
  request(sample: RequestSample): void
  /** The Prometheus text exposition. */
  render(): Promise<string>
}

/** Creates the metrics of one runtime (its own registry: several may live in one test process). */
export function createMetrics(src: MetricsSources): RuntimeMetrics {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry, prefix: PREFIX })

  // Up to an hour: a multi-GiB upload or an unlock on a slow device takes tens of minutes.
  const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
  const requests = new Counter({ name: `${PREFIX}http_requests_total`, help: 'HTTP requests answered, by function, route pattern, method and status', labelNames: ['function', 'route', 'method', 'status'], registers })
  const duration = new Histogram({ name: `${PREFIX}http_request_duration_seconds`, help: 'Time from the request to the last byte of its answer', labelNames: ['function', 'route', 'method', 'status'], buckets: seconds, registers })
  const bytesOut = new Counter({ name: `${PREFIX}http_response_bytes_total`, help: 'Body bytes served', labelNames: ['function', 'route'], registers })
  const bytesIn = new Counter({ name: `${PREFIX}http_request_bytes_total`, help: 'Body bytes received', labelNames: ['function', 'route'], registers })

  const hits = new Counter({ name: `${PREFIX}cache_hits_total`, help: 'Loads whose big part was in the cache', registers })
  const misses = new Counter({ name: `${PREFIX}cache_misses_total`, help: 'Loads whose big part had to come from the CDN', registers })
  const evictions = new Counter({ name: `${PREFIX}cache_evictions_total`, help: 'Cached big parts evicted (LRU)', registers })
  const evictedBytes = new Counter({ name: `${PREFIX}cache_evicted_bytes_total`, help: 'Bytes of the cached big parts evicted', registers })
  new Gauge({ name: `${PREFIX}cache_max_bytes`, help: 'CACHE_MAX_BYTES', registers, collect() { this.set(src.cacheMaxBytes) } })
  const cacheBytes = new Gauge({ name: `${PREFIX}cache_bytes`, help: 'Bytes counted against CACHE_MAX_BYTES: cached big parts and partial downloads (/status cache.bytes)', registers })
  const cacheEntries = new Gauge({ name: `${PREFIX}cache_entries`, help: 'Number of cached big parts', registers })

  const downloads = new Counter({ name: `${PREFIX}cdn_downloads_total`, help: 'Big-part downloads from the CDN, by outcome', labelNames: ['outcome'], registers })
  const downloadBytes = new Counter({ name: `${PREFIX}cdn_download_bytes_total`, help: 'Bytes of big parts downloaded and verified', registers })
  const downloadSeconds = new Histogram({ name: `${PREFIX}cdn_download_duration_seconds`, help: 'Duration of a big-part download, retries included', labelNames: ['outcome'], buckets: seconds, registers })
  const retries = new Counter({ name: `${PREFIX}cdn_retries_total`, help: 'Big-part download attempts after a failed one', registers })
  const resumes = new Counter({ name: `${PREFIX}cdn_resumes_total`, help: 'Big-part downloads resumed with Range', registers })
  const verification = new Counter({ name: `${PREFIX}cdn_verification_failures_total`, help: 'Big parts that failed their sha256 or manifest check', registers })

  const api = new Counter({ name: `${PREFIX}resource_api_requests_total`, help: 'Resource API requests (each retry counts), by call and outcome (HTTP status, timeout, error)', labelNames: ['call', 'outcome'], registers })

  const unlockState = new Gauge({ name: `${PREFIX}unlock_state`, help: 'The unlock job state: 1 for the current one', labelNames: ['state'], registers })
  const unlockDone = new Gauge({ name: `${PREFIX}unlock_done_bytes`, help: 'Encrypted archive bytes the unlock job has read', registers })
  const unlockTotal = new Gauge({ name: `${PREFIX}unlock_archive_bytes`, help: 'Encrypted archive bytes of the unlock job', registers })

  const info = new Gauge({ name: `${PREFIX}function_info`, help: 'The active artifact of each function: its release version (factory or the deployed one) and sha256', labelNames: ['function', 'version', 'sha256'], registers })
  const loadedAt = new Gauge({ name: `${PREFIX}function_loaded_timestamp_seconds`, help: 'When each function artifact was loaded', labelNames: ['function'], registers })
  new Gauge({ name: `${PREFIX}build_info`, help: 'The loader version', labelNames: ['version'], registers, collect() { this.set({ version: src.version }, 1) } })

  /** Samples the cache, the unlock state and the functions just before a scrape. */
  async function sample(): Promise<void> {
    const [usage, unlock] = await Promise.all([src.cacheUsage().catch(() => ({ bytes: 0, entries: 0 })), readUnlock(src.state).catch(() => null)])
    cacheBytes.set(usage.bytes)
    cacheEntries.set(usage.entries)
    for (const s of UNLOCK_STATES) unlockState.set({ state: s }, unlock?.state === s ? 1 : 0)
    unlockDone.set(unlock?.progress.bytesDone ?? 0)
    unlockTotal.set(unlock?.progress.bytesTotal ?? 0)
    info.reset()
    loadedAt.reset()
    for (const f of src.functions()) {
      // The function's own release (`factory` for the image's artifact), not the runtime's version.
      info.set({ function: f.name, version: String(f.version ?? 'factory'), sha256: f.sha256 }, 1)
      loadedAt.set({ function: f.name }, Date.parse(f.loadedAt) / 1000)
    }
  }

  return {
    registry,
    cacheLookup: (result) => (result === 'hit' ? hits : misses).inc(),
    cacheEvicted: (bytes) => { evictions.inc(); evictedBytes.inc(bytes) },
    cdnDownload(outcome, bytes, s) {
      downloads.inc({ outcome })
      if (bytes > 0) downloadBytes.inc(bytes)
      downloadSeconds.observe({ outcome }, s)
    },
    cdnRetry: () => retries.inc(),
    cdnResume: () => resumes.inc(),
    cdnVerificationFailure: () => verification.inc(),
    apiCall: (call, outcome) => api.inc({ call, outcome }),
    request(r) {
      const labels = { function: r.fn, route: r.route, method: r.method, status: String(r.status) }
      requests.inc(labels)
      duration.observe(labels, r.seconds)
      if (r.bytesOut > 0) bytesOut.inc({ function: r.fn, route: r.route }, r.bytesOut)
      if (r.bytesIn > 0) bytesIn.inc({ function: r.fn, route: r.route }, r.bytesIn)
    },
    async render() {
      await sample()
      return registry.metrics()
    },
  }
}

/** True when `m` is the runtime's own metrics (not a stand-in a test made). */
export const isRuntimeMetrics = (m: Metrics): m is RuntimeMetrics => typeof (m as Partial<RuntimeMetrics>).render === 'function'
