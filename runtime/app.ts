// Builds the Hono app that routes requests to the loaded functions, with the cross-cutting concerns.
import { Hono, type Context } from 'hono'
import { secureHeaders } from 'hono/secure-headers'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Env, RouteDef } from '../shared/function'
import { HttpError, isHttpError, problemResponse } from '../shared/http-error'
import { JSON_LIMIT } from '../shared/json'
import { callerTokenMatches } from './caller-token'
import type { createRateLimiter } from './rate-limit'
import type { LoadedFunction } from './registry'

type NodeBindings = { incoming?: IncomingMessage; outgoing?: ServerResponse }
type Vars = { requestId: string }

/** Shared, long-lived pieces the app is built around (they survive a reload). */
export interface AppDeps {
  env: Env
  limiter: ReturnType<typeof createRateLimiter>
  transfers: { active: number }
}

const clientAddress = (c: Context) => (c.env as NodeBindings | undefined)?.incoming?.socket?.remoteAddress ?? 'local'

const patternOf = (path: string) => new RegExp('^' + path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/:[A-Za-z_]+/g, '/[^/]+') + '/?$')

/** Builds a fresh app from the current functions; the runtime swaps it in on reload. */
export function createApp(functions: LoadedFunction[], deps: AppDeps): Hono<{ Bindings: NodeBindings; Variables: Vars }> {
  const { env } = deps
  const app = new Hono<{ Bindings: NodeBindings; Variables: Vars }>()
  const routes = functions.flatMap((f) => f.mod.routes.map((r) => ({ ...r, fn: f })))

  app.use('*', async (c, next) => {
    const given = c.req.header('x-request-id')
    const id = given && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID()
    c.set('requestId', id)
    const started = performance.now()
    await next()
    c.header('x-request-id', id)
    env.log.info({ requestId: id, method: c.req.method, path: c.req.path, status: c.res.status,
      ms: Math.round(performance.now() - started), client: clientAddress(c) }, 'request')
  })
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'same-origin' }))

  for (const route of routes) {
    app.on(route.method, route.path, async (c, next) => guard(c, next, route), async (c) => {
      const ctx = {
        params: c.req.param() as Record<string, string>,
        requestId: c.get('requestId'),
        clientAddress: clientAddress(c),
        log: env.log.child({ requestId: c.get('requestId'), fn: route.fn.info.name }),
        waitUntil: (p: Promise<unknown>) => { p.catch((e) => env.log.error({ err: errorSummary(e) }, 'background work failed')) },
      }
      return route.fn.mod.fetch(c.req.raw, env, ctx)
    })
  }

  async function guard(c: Context<{ Bindings: NodeBindings; Variables: Vars }>, next: () => Promise<void>, route: RouteDef) {
    const token = env.config.LOADER_API_TOKEN
    if (token && !route.public && !callerTokenMatches(c.req.header('authorization'), token)) {
      throw new HttpError(401, 'this loader needs Authorization: Bearer <LOADER_API_TOKEN>', { type: 'caller-token', headers: { 'www-authenticate': 'Bearer' } })
    }
    if (route.rateLimited) {
      const wait = deps.limiter.hit(clientAddress(c))
      if (wait) throw new HttpError(429, `too many attempts from this address; try again in ${wait} s`, { type: 'rate-limited', headers: { 'retry-after': String(wait) } })
    }
    if ((route.body ?? 'json') === 'json') {
      const declared = Number(c.req.header('content-length') ?? 0)
      if (declared > JSON_LIMIT) throw new HttpError(413, `the body is larger than ${JSON_LIMIT} bytes`)
    }
    if (!route.transfer) return next()
    if (deps.transfers.active >= env.config.MAX_CONCURRENT_TRANSFERS) {
      throw new HttpError(503, 'too many loads and uploads at once; try again shortly', { type: 'busy', headers: { 'retry-after': '1' } })
    }
    // The slot is held until the response has gone out (node-server's `close`), not just until the handler returns.
    deps.transfers.active++
    let released = false
    const release = () => { if (!released) { released = true; deps.transfers.active-- } }
    const out = c.env?.outgoing
    out?.once('close', release)
    try {
      await next()
    } finally {
      if (!out) release()
    }
  }

  app.notFound((c) => {
    const allowed = routes.filter((r) => patternOf(r.path).test(c.req.path)).map((r) => r.method)
    if (allowed.length) {
      return problemResponse(405, { type: 'about:blank', title: 'Method Not Allowed', status: 405,
        detail: `${c.req.method} is not allowed here; use ${[...new Set(allowed)].join(', ')}`, requestId: c.get('requestId') },
      { allow: [...new Set(allowed)].join(', ') })
    }
    return problemResponse(404, { type: 'about:blank', title: 'Not Found', status: 404,
      detail: `no route ${c.req.method} ${c.req.path}`, requestId: c.get('requestId') })
  })

  app.onError((err, c) => {
    const requestId = c.get('requestId')
    if (isHttpError(err)) {
      if (err.status >= 500) env.log.warn({ requestId, status: err.status, detail: err.message, cause: causeOf(err) }, 'upstream or service problem')
      return err.getResponse(requestId)
    }
    env.log.error({ requestId, err: errorSummary(err) }, 'unhandled error')
    return problemResponse(500, { type: 'about:blank', title: 'Internal Server Error', status: 500,
      detail: 'an unexpected error occurred; the log has its request id', requestId })
  })
  return app
}

/** The chain of causes' names and codes, for the log (messages of network errors carry no secret). */
function causeOf(e: Error): string | undefined {
  const out: string[] = []
  for (let c = e.cause as { name?: string; code?: string; message?: string } | undefined, i = 0; c && i < 4; c = (c as { cause?: never }).cause, i++) {
    out.push([c.name, c.code].filter(Boolean).join(' ') || 'error')
  }
  return out.length ? out.join(' <- ') : undefined
}

/** Name, message and stack of an error, for the log only (never a response). */
export function errorSummary(e: unknown): Record<string, unknown> {
  return e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { value: String(e) }
}
