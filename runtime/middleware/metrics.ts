// Request metrics: count, duration to the last byte, body bytes in and out, by function and route pattern.
import type { MiddlewareHandler } from 'hono'
import { routePath } from 'hono/route'
import type { RuntimeMetrics } from '../bindings/metrics'
import type { NodeBindings } from './client-address'

/** Which function serves `method route` (`runtime` for the runtime's own routes and 405s). */
export type FunctionOf = (method: string, route: string) => string
/** The methods `route` answers (its own routes'); any other method is counted as `other`. */
export type MethodsOf = (route: string) => ReadonlySet<string> | undefined

/** Methods an unmatched request keeps as its label; any other is `other` (a bounded label set). */
const COMMON = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

/** The method label: the route's own methods (HEAD with GET) as they are, anything else `other`. */
export function methodLabel(method: string, allowed: ReadonlySet<string> | undefined): string {
  if (!allowed) return COMMON.has(method) ? method : 'other'
  return allowed.has(method) || (method === 'HEAD' && allowed.has('GET')) ? method : 'other'
}

/**
 * Records every request once its answer is over. On node-server the bytes are the body bytes
 * the socket really carried (a cut download counts what was sent); elsewhere Content-Length.
 */
export const requestMetrics = (metrics: RuntimeMetrics, functionOf: FunctionOf, methodsOf: MethodsOf = () => undefined): MiddlewareHandler<{ Bindings: NodeBindings }> => async (c, next) => {
  const started = performance.now()
  const { incoming, outgoing } = (c.env ?? {}) as Partial<NodeBindings>
  let bytesIn = 0
  let bytesOut = 0
  if (incoming && outgoing) {
    // The HTTP parser pushes body chunks into the request; the server writes the answer's body.
    const push = incoming.push
    incoming.push = function (chunk: unknown, ...rest: unknown[]) {
      if (chunk) bytesIn += (chunk as Buffer).length
      return push.call(this, chunk, ...(rest as [BufferEncoding]))
    }
    const write = outgoing.write
    outgoing.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      if (chunk && typeof chunk !== 'function') bytesOut += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    } as typeof outgoing.write
    const end = outgoing.end
    outgoing.end = function (this: unknown, chunk?: unknown, ...rest: unknown[]) {
      if (chunk && typeof chunk !== 'function') bytesOut += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length
      return (end as (...a: unknown[]) => typeof outgoing).call(this, chunk, ...rest)
    } as typeof outgoing.end
  }
  await next()
  const route = routePath(c, -1)
  const known = route && route !== '*' && route !== '/*'
  const method = methodLabel(c.req.method, known ? methodsOf(route) ?? new Set() : undefined)
  const sample = { fn: known ? functionOf(c.req.method, route) : 'none', route: known ? route : 'unmatched', method, status: c.res.status }
  if (outgoing) {
    const record = () => metrics.request({ ...sample, seconds: (performance.now() - started) / 1000, bytesIn, bytesOut })
    // A client that left before the answer was ready closed the response already: no 'close' is coming.
    if (outgoing.destroyed) record()
    else outgoing.once('close', record)
  } else {
    const len = (v: string | null | undefined) => Number(v ?? 0) || 0
    metrics.request({ ...sample, seconds: (performance.now() - started) / 1000,
      bytesIn: len(c.req.header('content-length')), bytesOut: len(c.res.headers.get('content-length')) })
  }
}
