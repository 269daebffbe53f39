// Request ids: Hono's requestId (a caller's X-Request-Id of at most 64 safe characters, else a UUID),
// echoed on every answer, including the ones functions build themselves.
import type { MiddlewareHandler } from 'hono'
import { requestId } from 'hono/request-id'

/** Sets `c.var.requestId` and the `X-Request-Id` answer header. */
export const requestIds = (): MiddlewareHandler => {
  const inner = requestId({ limitLength: 64 })
  return (c, next) => inner(c, async () => {
    await next()
    c.header('x-request-id', c.get('requestId'))
  })
}
