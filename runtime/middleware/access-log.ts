// One access-log line per request: id, method, path, status, duration, client (and its certificate's subject).
import type { MiddlewareHandler } from 'hono'
import type { Logger } from '../../shared/contract/logger'
import { clientAddress } from './client-address'
import { clientCertificateSubject } from './client-certificate'

/** Logs every request once its response is known. */
export const accessLog = (log: Logger): MiddlewareHandler => async (c, next) => {
  const started = performance.now()
  // Read before the request runs: an aborted request's socket is gone afterwards.
  const subject = clientCertificateSubject(c)
  await next()
  log.info({ requestId: c.get('requestId'), method: c.req.method, path: c.req.path, status: c.res.status,
    ms: Math.round(performance.now() - started), client: clientAddress(c), ...(subject ? { clientCert: subject } : {}) }, 'request')
}
