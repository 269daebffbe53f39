// The function contract: what a flow exports and the bindings (`env`, `ctx`) it is handed.
import type { Storage } from 'unstorage'
import type { GenericSchema } from 'valibot'
import type { Config } from './config'
import type { Logger } from './logger'
import type { BigPartCache } from './cache'
import type { Archives } from './archives'
import type { DockerTls } from './docker-tls'
import type { Tokens } from './tokens'
import type { Metrics } from './metrics'
import type { Downloads } from './downloads'

/**
 * The version of this contract. A release names the contract it was built against
 * (`release.json` `contract`); the runtime refuses a release whose contract it does not serve.
 */
export const CONTRACT_VERSION = 1

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
  /** What `/openapi.json` says of the route; the schemas are the ones the function validates with. */
  doc?: RouteDoc
}

/** A body of one content type: a valibot schema (JSON, or the fields of a form), or raw bytes. */
export type BodyDoc = GenericSchema | 'binary'

/** One success answer of a route. */
export interface AnswerDoc {
  description: string
  /** Content type → body; omitted for an answer without a body. */
  content?: Record<string, BodyDoc>
  /** Response headers worth knowing: name → description. */
  headers?: Record<string, string>
}

/**
 * The OpenAPI description of a route, declared next to the schemas the function validates
 * with. The runtime adds the problems its middleware answers (caller token, rate limit, body
 * limit, transfer slots, 500) and builds `GET /openapi.json` from the loaded functions.
 */
export interface RouteDoc {
  summary: string
  description?: string
  /** Path parameters (`:name` in the path) → schema. */
  params?: Record<string, GenericSchema>
  /** Query parameters → schema (all optional). */
  query?: Record<string, GenericSchema>
  /** Request body: content type → body. */
  body?: Record<string, BodyDoc>
  /** Whether a body must be sent (default: optional). */
  bodyRequired?: boolean
  /** Success answers by status. */
  answers: Record<number, AnswerDoc>
  /** The problem+json answers the function itself gives: status → when. */
  problems: Record<number, string>
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
  /** The release version (`factory` for the image's own artifact). */
  version?: number | 'factory'
  /** Where the artifact came from: the release store on the data volume, or the image. */
  source?: 'store' | 'factory'
  /** True while the release is in its deployment's trial window. */
  trial?: boolean
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
  /** Verifies the Resource API's tokens (runtime/bindings/tokens.ts). */
  tokens: Tokens
  log: Logger
  /** Counters the flows report to; `GET /metrics` shows them. */
  metrics: Metrics
  hardware(): Promise<Hardware>
  /** The engine's TLS material (DOCKER_TLS_VERIFY with a tcp:// DOCKER_HOST), else undefined. */
  dockerTls(): Promise<DockerTls | undefined>
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
  /**
   * Optional check run once when a release is activated, before it is swapped in, with a
   * time limit: a throw or a timeout rejects the deployment. Must not touch durable state.
   */
  selfTest?(env: Env): Promise<void>
}

/** Identity helper that checks a function definition against the contract. */
export const defineFunction = <T extends LoaderFunction>(fn: T): T => fn
