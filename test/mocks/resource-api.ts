// MSW handlers for the Resource API: the development origin's contract, in process; tests prepend faults.
import { http } from 'msw'
import { createOrigin, type OriginOptions } from '../origin/origin'
import { SALTS } from '../helpers/vectors'

export const API = 'http://resource-api.test'
export const JWT_SECRET = 'jwt-secret-for-tests-0123456789'

/** A fresh origin and the handler that forwards every Resource API call to it. */
export function resourceApi(opts: Partial<OriginOptions> = {}) {
  const origin = createOrigin({ jwtSecret: JWT_SECRET, salts: SALTS, ...opts })
  const handler = http.all(`${API}/*`, async ({ request }) => {
    const url = new URL(request.url)
    return origin.app.fetch(new Request(`http://origin${url.pathname}${url.search}`, request))
  })
  return { ...origin, handler }
}
