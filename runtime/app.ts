// Builds the Hono app that routes requests to the loaded functions, with the cross-cutting
// concerns as middleware, one per file under runtime/middleware/.
import { Hono, type Context, type MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { secureHeaders } from 'hono/secure-headers'
import type { Ctx, Env, RouteDef } from '../shared/contract/function'
import { HttpError, isHttpError, problemResponse } from '../shared/contract/http-error'
import { JSON_LIMIT } from '../shared/http/json'
import { accessLog } from './middleware/access-log'
import { callerToken } from './middleware/caller-token'
import { clientAddress, type NodeBindings } from './middleware/client-address'
import { methodNotAllowed } from './middleware/method-not-allowed'
import { requestMetrics } from './middleware/metrics'
import { isRuntimeMetrics } from './bindings/metrics'
import { ownRoutes } from './own-routes'
import { isPublic, isRateLimited } from './route-policy'
import { requestIds } from './middleware/request-id'
import { rateLimit, type createRateLimiter } from './middleware/rate-limit'
import { transferSlots, type TransferSlots } from './middleware/transfer-slots'
import { stalledResponse } from './middleware/stalled-response'
import { bodyStall } from './middleware/body-stall'
import type { LoadedFunction } from './registry'

type Vars = { requestId: string }

/** Shared, long-lived pieces the app is built around (they survive a reload). */
export interface AppDeps {
  env: Env
  limiter: ReturnType<typeof createRateLimiter>
  transfers: TransferSlots
  /** Told each function's answer status (a throw counts as its HttpError status, else 500): the deployment trial counts them. */
  observe?(fn: LoadedFunction, status: number): void
}

const tooLarge = () => { throw new HttpError(413, `the body is larger than ${JSON_LIMIT} bytes`) }

/** Builds a fresh app from the current functions; the runtime swaps it in on reload. */
export function createApp(functions: LoadedFunction[], deps: AppDeps): Hono<{ Bindings: NodeBindings; Variables: Vars }> {
  const { env } = deps
  const app = new Hono<{ Bindings: NodeBindings; Variables: Vars }>()
  const routes = functions.flatMap((f) => f.mod.routes.map((r) => ({ ...r, fn: f })))

  const own = ownRoutes(env, routes.map((r) => ({ route: r, fn: r.fn.info.name })))
  const fnOf = new Map(routes.map((r) => [`${r.method} ${r.path}`, r.fn.info.name]))
  const methodsOf = new Map<string, Set<string>>()
  for (const r of [...routes, ...own]) methodsOf.set(r.path, (methodsOf.get(r.path) ?? new Set()).add(r.method))
  if (isRuntimeMetrics(env.metrics)) app.use(requestMetrics(env.metrics, (method, path) => fnOf.get(`${method === 'HEAD' && !fnOf.has(`HEAD ${path}`) ? 'GET' : method} ${path}`) ?? 'runtime', (path) => methodsOf.get(path)))
  app.use(requestIds())
  app.use(accessLog(env.log))
  app.use(secureHeaders({ crossOriginResourcePolicy: 'same-origin' }))

  // A body cut mid-way went out under a success status: for a trial it is the error it was (502).
  const cutObserved = (c: Context) => {
    const fn = c.get('loadedFunction' as never) as LoadedFunction | undefined
    if (fn) deps.observe?.(fn, 502)
  }

  // Per route, only the concerns it declares, in this order: caller token, rate limit, body stall bound and limit, transfer slot (and its stall bound).
  // The caller token and the rate limit of /login and /unlock are not the route's to waive (route-policy.ts).
  const concerns = (route: RouteDef): MiddlewareHandler[] => [
    ...(env.config.LOADER_API_TOKEN && !isPublic(route) ? [callerToken(env.config.LOADER_API_TOKEN)] : []),
    ...(isRateLimited(route) ? [rateLimit(deps.limiter)] : []),
    ...((route.body ?? 'json') === 'json' ? [bodyStall(env.config.CLIENT_STALL_TIMEOUT_MS), bodyLimit({ maxSize: JSON_LIMIT, onError: tooLarge })] : []),
    ...(route.transfer ? [transferSlots(deps.transfers, env.config.MAX_CONCURRENT_TRANSFERS), stalledResponse(env.config.CLIENT_STALL_TIMEOUT_MS, env.log, cutObserved)] : []),
  ]

  for (const route of routes) {
    const handler: MiddlewareHandler = async (c) => {
      const ctx: Ctx = {
        params: c.req.param() as Record<string, string>,
        requestId: c.get('requestId'),
        clientAddress: clientAddress(c),
        log: env.log.child({ requestId: c.get('requestId'), fn: route.fn.info.name }),
        waitUntil: (p) => { p.catch((e) => env.log.error({ err: errorSummary(e) }, 'background work failed')) },
      }
      if (!deps.observe) return route.fn.mod.fetch(c.req.raw, env, ctx)
      c.set('loadedFunction' as never, route.fn as never)
      try {
        const res = await route.fn.mod.fetch(c.req.raw, env, ctx)
        deps.observe(route.fn, res.status)
        return res
      } catch (e) {
        deps.observe(route.fn, isHttpError(e) ? e.status : 500)
        throw e
      }
    }
    app.on([route.method], [route.path], ...concerns(route), handler)
  }
  for (const route of own) app.on(route.method, route.path, ...(concerns(route) as []), route.handler)
  // A known path asked with another method falls through its routes to a 405 naming the allowed ones.
  for (const path of new Set([...routes, ...own].map((r) => r.path))) {
    app.all(path, methodNotAllowed([...routes, ...own].filter((r) => r.path === path).map((r) => r.method as string)))
  }

  app.notFound((c) => problemResponse(404, { type: 'about:blank', title: 'Not Found', status: 404,
    detail: `no route ${c.req.method} ${c.req.path}`, requestId: c.get('requestId') }))

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
