// Route paths a release may serve: Hono compiles its matcher on the first request, so one pattern it
// cannot compile (`/x/:id{[}`) would make every request of the callers' port throw before any
// function runs (and the trial, which counts functions' answers, would see nothing). And Hono gives
// a request to the first route that matches it, so two routes that overlap (`/:page`, `/status`)
// collide as surely as two equal ones.
import { Hono } from 'hono'
import type { RouteDef } from '../../shared/contract/function'
import { Refused } from './release'

/** Throws Refused naming the first route of `name` whose path the router cannot compile. */
export function checkRoutePaths(name: string, routes: readonly Pick<RouteDef, 'method' | 'path'>[]): void {
  for (const r of routes) {
    const app = new Hono()
    app.on(r.method, r.path, () => new Response(null))
    try {
      app.router.match(r.method, '/')
    } catch (e) {
      throw new Refused(`${name}: route ${r.method} ${r.path} cannot be served (${e instanceof Error ? e.message : String(e)})`)
    }
  }
}

/** A concrete path `path` matches: each parameter and wildcard replaced by a sample segment. */
const samplePath = (path: string) => path.replace(/:[^/{]+(\{[^}]*\})?\??/g, 'x1').replace(/\*+/g, 'x1')

/** True when `pattern` answers the path `path` (method aside). */
function answers(pattern: string, path: string): boolean {
  const app = new Hono()
  app.get(pattern, () => new Response(null))
  try {
    return app.router.match('GET', path)[0].length > 0
  } catch {
    return false
  }
}

/**
 * True when some request would match both routes: the same method, and either path's sample
 * (`/items/:id` → `/items/x1`) answered by the other's pattern. A parameter with a pattern of its
 * own (`:id{[0-9]+}`) may not match the sample, so such an overlap can go unseen.
 */
export const routesOverlap = (a: Pick<RouteDef, 'method' | 'path'>, b: Pick<RouteDef, 'method' | 'path'>): boolean =>
  a.method === b.method && (a.path === b.path || answers(a.path, samplePath(b.path)) || answers(b.path, samplePath(a.path)))
