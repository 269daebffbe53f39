// Request ids: Hono's requestId with the loader's rule (a caller's X-Request-Id of 1–64 characters
// of letters, digits, "_", "." or "-" is kept, anything else replaced by a UUID), echoed on every
// answer, including the ones functions build themselves.
import { randomUUID } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { requestId } from 'hono/request-id'

const KEPT = /^[\w.-]{1,64}$/

/** Sets `c.var.requestId` and the `X-Request-Id` answer header. */
export const requestIds = (): MiddlewareHandler => {
  const inner = requestId({
    headerName: '',
    generator: (c) => {
      const given = c.req.header('x-request-id')
      return given && KEPT.test(given) ? given : randomUUID()
    },
  })
  return (c, next) => inner(c, async () => {
    await next()
    c.header('x-request-id', c.get('requestId'))
  })
}
