// One access-log line per request: id, method, path, status, duration, client.
import type { MiddlewareHandler } from 'hono'
import type { Logger } from '../../shared/contract/logger'
import { clientAddress } from './client-address'

/** Logs every request once its response is known. */
export const accessLog = (log: Logger): MiddlewareHandler => async (c, next) => {
  const started = performance.now()
  await next()
  log.info({ requestId: c.get('requestId'), method: c.req.method, path: c.req.path, status: c.res.status,
    ms: Math.round(performance.now() - started), client: clientAddress(c) }, 'request')
}
