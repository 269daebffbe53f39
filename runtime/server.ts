// The runtime: one node-server handler in front of a swappable Hono app, reloads, graceful shutdown.
import { serve, type ServerType } from '@hono/node-server'
import { watch, type FSWatcher } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { Server as TlsServer } from 'node:tls'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import type { Env } from '../shared/contract/function'
import { createApp, errorSummary, type AppDeps } from './app'
import { createRateLimiter } from './middleware/rate-limit'
import type { LoadedFunction } from './registry'
import { listenError } from './listen-error'
import type { TlsListener } from './tls'

/** Options of a running runtime. */
export interface RuntimeOptions {
  env: Env
  /** Loads the functions; given the current ones so unchanged modules are reused. */
  load(previous: LoadedFunction[]): Promise<LoadedFunction[]>
  /** Folder to watch for manifest changes (omit to reload only on SIGHUP/`reload()`). */
  watchDir?: string
  /** Runs before the first request is served (e.g. recovery of interrupted jobs). */
  onReady?(env: Env): Promise<void>
  /** Serve HTTPS only, with these certificates (kept current by the listener). */
  tls?: TlsListener
  /** Told the status of every answer of a function (a throw: its HttpError status, else 500): the deployment trial. */
  observe?: AppDeps['observe']
}

/** A started runtime. */
export interface Runtime {
  url: string
  port: number
  functions(): LoadedFunction[]
  reload(): Promise<boolean>
  /**
   * Replaces the functions with `change(current)` in one swap, after any reload or swap under
   * way; resolves once the new app serves. A throw leaves the functions as they were.
   */
  swap(change: (current: LoadedFunction[]) => LoadedFunction[] | Promise<LoadedFunction[]>): Promise<boolean>
  close(): Promise<void>
  /** The listening node server (its timeouts are part of the contract). */
  server: Server
}

/** Loads the functions, builds the app and serves it; `holder` lets env.functions() see reloads. */
export async function startRuntime(opts: RuntimeOptions, holder: { current: LoadedFunction[] }): Promise<Runtime> {
  const { env } = opts
  const deps: AppDeps = { env, limiter: createRateLimiter(env.config.LOGIN_RATE_PER_MINUTE), transfers: { active: 0 }, observe: opts.observe }
  holder.current = await opts.load([])
  let app = createApp(holder.current, deps)
  await opts.onReady?.(env)

  // Reloads and swaps run one after the other. A reload asked while one runs is queued (at most
  // one: every caller meanwhile shares it) and reads the manifest after the running one ended,
  // so a change made during a reload is never lost.
  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(job: () => Promise<T>): Promise<T> => {
    const p = chain.then(job)
    chain = p.catch(() => {})
    return p
  }
  const install = (next: LoadedFunction[], what: string): boolean => {
    if (next.every((f, i) => holder.current[i] === f) && next.length === holder.current.length) return false
    const nextApp = createApp(next, deps)
    holder.current = next
    app = nextApp
    env.log.info({ functions: next.map((f) => ({ name: f.info.name, sha256: f.info.sha256 })) }, what)
    return true
  }
  let queued: Promise<boolean> | undefined
  const reload = () => (queued ??= serial(async () => {
    queued = undefined
    try {
      return install(await opts.load(holder.current), 'functions reloaded')
    } catch (e) {
      env.log.warn({ err: errorSummary(e) }, 'reload skipped: keeping the functions already loaded')
      return false
    }
  }))
  const swap: Runtime['swap'] = (change) => serial(async () => install(await change(holder.current), 'functions swapped'))

  const inflight = new Set<import('node:http').ServerResponse>()
  const server: ServerType = serve({
    fetch: (req, bindings) => app.fetch(req, bindings),
    hostname: env.config.HOST,
    port: env.config.PORT,
    ...(opts.tls ? { createServer: createHttpsServer, serverOptions: opts.tls.options } : {}),
  })
  // An upload body may take longer than Node's default requestTimeout (300 s) on a slow link: no
  // whole-request bound; headersTimeout stays, and a stalled body is ended by CLIENT_STALL_TIMEOUT_MS.
  ;(server as Server).requestTimeout = 0
  // The listener logs refused handshakes (no or a wrong client certificate, plain HTTP, an old TLS version): they never reach the app.
  if (opts.tls) opts.tls.attach(server as TlsServer)
  server.on('request', (_req, res) => {
    inflight.add(res)
    res.once('close', () => inflight.delete(res))
  })
  await new Promise<void>((ok, fail) => {
    if (server.listening) return ok()
    server.once('listening', ok)
    server.once('error', (e) => fail(listenError(e, env.config.HOST, env.config.PORT, 'PORT')))
  })

  let watcher: FSWatcher | undefined
  if (opts.watchDir) {
    let timer: NodeJS.Timeout | undefined
    watcher = watch(opts.watchDir, (_event, name) => {
      if (name !== 'manifest.json') return
      clearTimeout(timer)
      timer = setTimeout(() => void reload(), 100)
    })
  }

  const { port } = server.address() as AddressInfo
  const host = env.config.HOST.includes(':') ? `[${env.config.HOST}]` : env.config.HOST
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    functions: () => holder.current,
    server: server as Server,
    reload,
    swap,
    async close() {
      watcher?.close()
      const http = server as Server
      let closed = false
      const done = new Promise<void>((ok) => http.close(() => { closed = true; ok() }))
      // Stop accepting; close keep-alive connections as soon as their response is done;
      // responses in flight finish, up to SHUTDOWN_GRACE_MS, then anything left is cut.
      const deadline = Date.now() + env.config.SHUTDOWN_GRACE_MS
      while (!closed && Date.now() < deadline) {
        http.closeIdleConnections()
        await Promise.race([done, new Promise((r) => setTimeout(r, 25))])
      }
      if (!closed) {
        env.log.warn({ inflight: inflight.size }, 'shutdown grace period over: closing the connections left')
        http.closeAllConnections()
      }
      await done
    },
  }
}
