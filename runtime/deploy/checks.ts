// The checks of deploy.md §3, run on a whole deployment before anything changes: the parts, each
// release's signature, name, hash, size and contract, the anti-downgrade floor, route collisions.
import type { RouteDef } from '../../shared/contract/function'
import type { LoadedFunction } from '../registry'
import { OWN_ROUTES } from '../own-routes'
import { pointerOf, type DeployContext } from './context'
import { Refused, type Release } from './release'
import { checkRoutePaths, routesOverlap } from './route-paths'
import { verifyRelease, type ReleaseFiles } from './verify'

/** Parts of a deployment body: part name → bytes. */
export type Parts = Map<string, Uint8Array>

const PART = /^([a-z][a-z0-9-]{0,62})\.(release\.json|release\.sig|mjs)$/

/** Groups the parts by function; every release needs its three parts and nothing else is allowed. */
export function releasesOf(parts: Parts): Map<string, ReleaseFiles> {
  const by = new Map<string, Partial<ReleaseFiles>>()
  for (const [part, bytes] of parts) {
    const m = PART.exec(part)
    if (!m) throw new Refused(`unexpected part ${JSON.stringify(part.slice(0, 80))}: parts are <name>.release.json, <name>.release.sig, <name>.mjs`)
    const files = by.get(m[1]) ?? {}
    files[m[2] === 'mjs' ? 'artifact' : m[2] === 'release.json' ? 'json' : 'sig'] = bytes
    by.set(m[1], files)
  }
  if (!by.size) throw new Refused('the deployment holds no release')
  for (const [name, f] of by) {
    if (!f.json || !f.sig || !f.artifact) throw new Refused(`${name}: a release needs the parts ${name}.release.json, ${name}.release.sig and ${name}.mjs`)
  }
  return by as Map<string, ReleaseFiles>
}

const routeKey = (r: Pick<RouteDef, 'method' | 'path'>) => `${r.method} ${r.path}`

/** Runs every check on the whole deployment against the functions running; throws Refused with the first reason. */
export function checkDeployment(ctx: DeployContext, files: Map<string, ReleaseFiles>, running: LoadedFunction[]): Map<string, Release> {
  const releases = new Map<string, Release>()
  for (const [name, f] of files) {
    const r = verifyRelease(f, ctx.keys, name)
    const { highest } = pointerOf(ctx, name)
    if (r.version <= highest) throw new Refused(`${name}: version ${r.version} is not above ${highest}, the highest this device accepted (a downgrade goes through rollback)`)
    releases.set(name, r)
  }
  checkRoutes(new Map([...releases].map(([name, r]) => [name, r.routes])), running)
  return releases
}

/**
 * Throws Refused when a route of the functions in `next` (name → routes) cannot be compiled by the
 * router, or is served by another running function not replaced by `next`, or by two of `next`, or
 * overlaps such a route (`/:page` and `/status`: some request would match both).
 */
export function checkRoutes(next: Map<string, readonly RouteDef[]>, running: LoadedFunction[]): void {
  type Served = { fn: string; route: Pick<RouteDef, 'method' | 'path'> }
  const owner = new Map<string, Served>(OWN_ROUTES.map((route) => [routeKey(route), { fn: 'the runtime', route }]))
  for (const f of running) {
    if (!next.has(f.info.name)) for (const route of f.mod.routes) owner.set(routeKey(route), { fn: f.info.name, route })
  }
  for (const [name, routes] of next) {
    checkRoutePaths(name, routes)
    for (const route of routes) {
      const other = owner.get(routeKey(route))?.fn
      if (other && other !== name) throw new Refused(`${name}: route ${routeKey(route)} is already served by ${other}`)
      owner.set(routeKey(route), { fn: name, route })
    }
  }
  // Not equal but overlapping (a parameter or a wildcard): the router would give one function's requests to the other.
  for (const [name, routes] of next) {
    for (const route of routes) {
      const other = [...owner.values()].find((o) => o.fn !== name && routesOverlap(route, o.route))
      if (other) throw new Refused(`${name}: route ${routeKey(route)} overlaps ${routeKey(other.route)} of ${other.fn}`)
    }
  }
}
