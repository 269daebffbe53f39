// Route paths a release may serve: Hono compiles its matcher on the first request, so one pattern it
// cannot compile (`/x/:id{[}`) would make every request of the callers' port throw before any
// function runs (and the trial, which counts functions' answers, would see nothing). Checked first.
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
