// Which artifact of each function runs (deploy.md §2): at start, active → previous →
// last-known-good → factory, never failing the start because of a function; on a dev reload
// (factory manifest changed, SIGHUP), the factory artifacts of functions no release is active for.
import { errorSummary } from '../app'
import { readManifest, type LoadedFunction } from '../registry'
import { loadFactory, loadRef, pointerOf, savePointers, type DeployContext } from './context'
import { bestEffort } from './best-effort'
import type { Ref } from './pointer'
import { Damaged } from './release'
import { routesOverlap } from './route-paths'
import { OWN_ROUTES } from '../own-routes'
import type { RouteDef } from '../../shared/contract/function'

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e))

/**
 * Loads every function at start; a function none of whose candidates loads is left out, with a warning.
 * A candidate that serves a route another function already serves does not load either (deploy.md
 * §3): the image's own functions are placed first, so a stored release that a newer image's function
 * collides with falls back. A damaged release leaves the pointers (see below).
 */
export async function loadAtStart(ctx: DeployContext): Promise<LoadedFunction[]> {
  const { env } = ctx
  const manifest = await readManifest(ctx.factoryDir)
  const fromStore = (name: string) => pointerOf(ctx, name).active !== 'factory'
  const names = [...new Set([...manifest.functions.map((f) => f.name), ...Object.keys(ctx.pointers)])].sort()
    .sort((a, b) => Number(fromStore(a)) - Number(fromStore(b)))
  const served: { fn: string; route: Pick<RouteDef, 'method' | 'path'> }[] = OWN_ROUTES.map((route) => ({ fn: 'the runtime', route }))
  const collision = (name: string, routes: readonly RouteDef[]) => {
    for (const route of routes) {
      const other = served.find((s) => s.fn !== name && routesOverlap(route, s.route))
      if (other) return `route ${route.method} ${route.path} collides with ${other.route.method} ${other.route.path} of ${other.fn}`
    }
  }
  let dirty = false
  const out: LoadedFunction[] = []
  for (const name of names) {
    let p = pointerOf(ctx, name)
    if (p.trial) {
      const { deployment } = p.trial
      const version = p.active
      // The process stopped during a trial: the trial failed, the release before it runs.
      const reason = 'the process stopped during the trial'
      await bestEffort(env, 'the journal append', () => ctx.journal.append({ event: 'rolled_back', deployment, function: name, version, reason }))
      env.log.warn({ fn: name, version: p.active }, `deployment ${p.trial.deployment} rolled back at start: ${reason}`)
      p = ctx.pointers[name] = { ...p, active: p.previous ?? p.lastKnownGood, previous: p.trial.restorePrevious, trial: null }
      dirty = true
    }
    // A function only the store had, rolled back to `factory`: nothing to run, nothing to warn about.
    if (p.active === 'factory' && !manifest.functions.some((f) => f.name === name)) continue
    const candidates: Ref[] = ctx.keys.length
      ? [...new Set<Ref>([p.active, ...(p.previous !== null ? [p.previous] : []), p.lastKnownGood, 'factory'])]
      : ['factory']
    const failures: string[] = []
    let loaded: LoadedFunction | undefined
    let runs: Ref | undefined
    const damaged = new Set<Ref>()
    for (const ref of candidates) {
      try {
        const candidate = await loadRef(ctx, name, ref, manifest)
        const clash = collision(name, candidate.mod.routes)
        if (clash) throw new Error(clash)
        loaded = candidate
        runs = ref
        break
      } catch (e) {
        if (e instanceof Damaged && ref !== 'factory') damaged.add(ref)
        failures.push(`${ref}: ${reasonOf(e)}`)
        env.log.debug({ fn: name, ref, err: errorSummary(e) }, 'candidate did not load')
      }
    }
    // A damaged release (its artifact is not the signed one, or it is no longer on the device) can
    // never load again: it leaves the pointers, whatever else failed, so a rollback "to previous"
    // reaches code that can run. A release that failed for a cause that may pass (a key set without
    // its key, a slow import, a read error, a collision with the image) keeps its place and comes
    // back when the cause goes.
    if (damaged.size) {
      const chain = candidates.filter((ref) => !damaged.has(ref))
      p = ctx.pointers[name] = { ...p, active: chain[0] ?? 'factory', previous: chain[1] ?? null,
        lastKnownGood: damaged.has(p.lastKnownGood) ? (runs ?? 'factory') : p.lastKnownGood, trial: null }
      dirty = true
    }
    if (failures.length) {
      const reason = loaded
        ? `${name}: ${failures.join('; ')}; running ${loaded.info.version}`
        : `${name}: no artifact could be loaded (${failures.join('; ')}); its routes are not served`
      await bestEffort(env, 'the journal append', () => ctx.journal.append({ event: 'fallback_at_start', function: name, version: loaded?.info.version ?? null, sha256: loaded?.info.sha256 ?? null, reason }))
      env.log.warn({ fn: name }, `fallback at start: ${reason}`)
      env.warnings.push(`fallback at start: ${reason}`)
    }
    if (loaded) {
      out.push(loaded)
      for (const route of loaded.mod.routes) served.push({ fn: name, route })
    }
  }
  out.sort((a, b) => a.info.name.localeCompare(b.info.name))
  if (dirty) await bestEffort(env, `writing ${ctx.pointerFile.path}`, () => savePointers(ctx))
  return out
}

/**
 * The dev reload: re-reads the factory manifest and imports the factory artifacts that changed,
 * for the functions no release is active for. Any failure throws: the runtime keeps what it has.
 */
export async function reloadFactory(ctx: DeployContext, previous: LoadedFunction[]): Promise<LoadedFunction[]> {
  const manifest = await readManifest(ctx.factoryDir)
  const out: LoadedFunction[] = []
  for (const name of [...new Set([...manifest.functions.map((f) => f.name), ...previous.map((f) => f.info.name)])].sort()) {
    const current = previous.find((f) => f.info.name === name)
    if (current && current.info.source === 'store') {
      out.push(current)
      continue
    }
    const entry = manifest.functions.find((f) => f.name === name)
    if (!entry) continue
    if (current && current.info.sha256 === entry.sha256) {
      out.push(current)
      continue
    }
    if (pointerOf(ctx, name).active !== 'factory' && current) {
      out.push(current)
      continue
    }
    out.push(await loadFactory(ctx, name, manifest))
  }
  return out
}
