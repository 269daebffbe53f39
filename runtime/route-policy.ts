// The two concerns a route may not waive, whatever a function or a signed release declares
// (http.md): the caller token (only GET /health goes without) and the rate limit of /login and /unlock.
import type { RouteDef } from '../shared/contract/function'
import { routesOverlap } from './deploy/route-paths'

/** Whether the route is served without the caller token: `public` counts for GET /health only. */
export const isPublic = (route: RouteDef): boolean => route.public === true && route.method === 'GET' && route.path === '/health'

const ALWAYS_LIMITED = [{ method: 'POST', path: '/login' }, { method: 'POST', path: '/unlock' }] as const

/**
 * Whether the route is rate-limited: as it declares, and always when it answers POST /login or
 * POST /unlock, however its path is written (`/:p{login}`, `/login/:x?` match them too).
 */
export const isRateLimited = (route: RouteDef): boolean =>
  route.rateLimited === true || ALWAYS_LIMITED.some((limited) => routesOverlap(route, limited))
