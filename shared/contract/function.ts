// The function contract: what a flow exports and the bindings (`env`, `ctx`) it is handed.
import type { Storage } from 'unstorage'
import type { Config } from './config'
import type { Logger } from './logger'
import type { BigPartCache } from './cache'
import type { Archives } from './archives'
import type { Downloads } from './downloads'

/** A route a function serves. `body` tells the runtime which body limit applies. */
export interface RouteDef {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path: string
  /** `json` (64 KiB limit, default), `stream` (the function enforces its own limit), `none`. */
  body?: 'json' | 'stream' | 'none'
  /** Counted against LOGIN_RATE_PER_MINUTE per client address. */
  rateLimited?: boolean
  /** Counted against MAX_CONCURRENT_TRANSFERS. */
  transfer?: boolean
  /** Served without the caller token (only /health). */
  public?: boolean
}

/** The device fingerprint and how it was obtained. */
export interface Hardware {
  fingerprint: string
  source: 'detected' | 'override'
  /** Fields that came back empty (`gpu`, `serial`, …). */
  unknown: string[]
}

/** Single flight: one promise per key while it runs. */
export interface Inflight {
  run<T>(key: string, work: () => Promise<T>): Promise<T>
  has(key: string): boolean
}

/** Time corrected by the offset to upstream `Date` headers. */
export interface Clock {
  now(): Date
  /** Records an upstream `Date` header value. */
  observe(dateHeader: string | null | undefined): void
  offsetMs(): number
}

/** One loaded function artifact, as `/status` reports it. */
export interface FunctionInfo {
  name: string
  sha256: string
  bytes?: number
  loadedAt: string
  routes: RouteDef[]
}

/** The bindings built once by the runtime and shared by every function. */
export interface Env {
  config: Config
  version: string
  session: Storage
  state: Storage
  cache: BigPartCache
  /** The encrypted Docker image archives under UNLOCK_ARCHIVE. */
  archives: Archives
  inflight: Inflight
  /** Big-part downloads in progress (joined by concurrent loads, listed by /status). */
  downloads: Downloads
  clock: Clock
  log: Logger
  hardware(): Promise<Hardware>
  functions(): FunctionInfo[]
  /** Start-up warnings worth showing in `/status` (e.g. insecure open). */
  warnings: string[]
}

/** Per-request context. */
export interface Ctx {
  params: Record<string, string>
  requestId: string
  clientAddress: string
  log: Logger
  /** Keeps work alive after the response (background jobs). */
  waitUntil(promise: Promise<unknown>): void
}

/** What a function module exports by default. */
export interface LoaderFunction {
  name: string
  routes: RouteDef[]
  fetch(request: Request, env: Env, ctx: Ctx): Promise<Response>
}

/** Identity helper that checks a function definition against the contract. */
export const defineFunction = <T extends LoaderFunction>(fn: T): T => fn
