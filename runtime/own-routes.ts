// The runtime's own routes: GET /metrics (Prometheus) and GET /openapi.json (built from the loaded functions).
import type { Handler } from 'hono'
import * as v from 'valibot'
import type { Env, RouteDef } from '../shared/contract/function'
import { isRuntimeMetrics } from './bindings/metrics'
import { openApiDocument, type ServedRoute } from './openapi'

/** A route the runtime serves itself. */
export interface OwnRoute extends RouteDef { handler: Handler }

const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** The routes the runtime keeps for itself: no function (a deployed one included) may serve or overlap them. */
export const OWN_ROUTES = [{ method: 'GET', path: '/metrics' }, { method: 'GET', path: '/openapi.json' }] as const

/** /metrics and /openapi.json over `served` (the functions' routes); the document is built once per app. */
export function ownRoutes(env: Env, served: ServedRoute[]): OwnRoute[] {
  const routes: OwnRoute[] = [
    { ...OWN_ROUTES[0], body: 'none', doc: {
      summary: 'Prometheus metrics: requests, cache, CDN, Resource API, unlock, functions, process',
      answers: { 200: { description: 'the text exposition format', content: { [METRICS_TYPE]: v.string() } } },
      problems: {},
    }, handler: async () => {
      const text = isRuntimeMetrics(env.metrics) ? await env.metrics.render() : ''
      return new Response(text, { headers: { 'content-type': METRICS_TYPE, 'cache-control': 'no-store' } })
    } },
    { ...OWN_ROUTES[1], body: 'none', doc: {
      summary: 'This document: OpenAPI 3.1, generated from the schemas the functions validate with',
      answers: { 200: { description: 'the OpenAPI 3.1 document', content: { 'application/json': v.looseObject({ openapi: v.literal('3.1.0') }) } } },
      problems: {},
    }, handler: () => new Response(document(), { headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } }) },
  ]
  let text: string | undefined
  const document = () => (text ??= JSON.stringify(openApiDocument([...served, ...routes.map((route) => ({ route, fn: 'runtime' }))],
    { version: env.version, callerToken: !!env.config.LOADER_API_TOKEN })))
  return routes
}
