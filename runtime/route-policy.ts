// The two concerns a route may not waive, whatever a function or a signed release declares
// (http.md): the caller token (only GET /health goes without) and the rate limit of /login and /unlock.
import type { RouteDef } from '../shared/contract/function'

/** Whether the route is served without the caller token: `public` counts for GET /health only. */
export const isPublic = (route: RouteDef): boolean => route.public === true && route.method === 'GET' && route.path === '/health'

/** Whether the route is rate-limited: as it declares, and POST /login and POST /unlock always. */
export const isRateLimited = (route: RouteDef): boolean =>
  route.rateLimited === true || (route.method === 'POST' && (route.path === '/login' || route.path === '/unlock'))
