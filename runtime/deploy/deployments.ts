// Deployments (deploy.md §3–4): checked whole before anything changes, then imported, self-tested,
// swapped in together, watched through a trial window, and committed or rolled back as a whole.
// Rollback on demand repoints to a release already on the device. One operation at a time.
import { randomUUID } from 'node:crypto'
import { errorSummary } from '../app'
import { readManifest, type LoadedFunction } from '../registry'
import type { Runtime } from '../server'
import { checkDeployment, checkRoutes, releasesOf, type Parts } from './checks'
import { loadRef, pointerOf, savePointers, type DeployContext } from './context'
import type { JournalInput } from './journal'
import type { Pointer, Pointers, Ref } from './pointer'
import { prepareRelease } from './prepare'
import { FUNCTION_NAME, Refused, type Release } from './release'
import type { ReleaseFiles } from './verify'

export type DeploymentState = 'verifying' | 'trial' | 'committed' | 'rolled_back' | 'rejected'

/** What GET /admin/deployments/:id answers. */
export interface Deployment {
  id: string
  state: DeploymentState
  functions: { name: string; version: number; sha256: string; keyId: string }[]
  reason: string | null
  events: { at: string; state: DeploymentState; detail: string }[]
}

const KEPT_DEPLOYMENTS = 100
/** How often a failed state.json write after a commit or a trial rollback is tried again. */
const POINTER_RETRY_MS = 5_000

/** The deployments of one runtime. */
export function createDeployer(ctx: DeployContext) {
  const { env } = ctx
  const cfg = env.config
  const deployments = new Map<string, Deployment>()
  let runtime: Pick<Runtime, 'swap' | 'functions'> | undefined
  let lock: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(job: () => Promise<T>): Promise<T> => {
    const p = lock.then(job)
    lock = p.catch(() => {})
    return p
  }
  /** The deployment between its checks and its end (verifying or trial). */
  let current: Deployment | undefined
  let trial: {
    dep: Deployment
    errors: Map<string, number[]>
    timer: NodeJS.Timeout
    before: Map<string, LoadedFunction | undefined>
    loaded: LoadedFunction[]
    done: boolean
  } | undefined

  const journal = (input: JournalInput) => ctx.journal.append(input).catch((e) => env.log.error({ err: errorSummary(e) }, 'journal append failed'))
  const event = (dep: Deployment, state: DeploymentState, detail: string) => {
    dep.state = state
    dep.events.push({ at: new Date().toISOString(), state, detail })
    env.log.info({ deployment: dep.id, state }, `deployment ${dep.id}: ${detail}`)
  }
  const remember = (dep: Deployment) => {
    deployments.set(dep.id, dep)
    for (const id of deployments.keys()) if (deployments.size > KEPT_DEPLOYMENTS) deployments.delete(id)
  }
  const off = () => {
    if (!ctx.keys.length) throw new Refused('deploys are off on this device: RELEASE_KEYS is not set', 503)
  }

  /** Replaces the functions named in `next` (or removes them where `next` maps to undefined). */
  const swapIn = (next: Map<string, LoadedFunction | undefined>) => runtime!.swap((cur) => {
    const out = cur.filter((f) => !next.has(f.info.name))
    for (const f of next.values()) if (f) out.push(f)
    return out.sort((a, b) => a.info.name.localeCompare(b.info.name))
  })

  /** Ends a deployment as rejected; `names` are the functions it named when none was verified yet. */
  async function reject(dep: Deployment, reason: string, names: string[] = []) {
    dep.reason = reason
    event(dep, 'rejected', reason)
    // Over as soon as it shows rejected: a deployment queued meanwhile is taken (not 409 "still rejected").
    if (current === dep) current = undefined
    // One line per refused deployment (a body naming many functions writes one line, not one each):
    // the function is the one the reason names, or the only one, else null.
    const named = dep.functions.length ? dep.functions.map((f) => f.name) : names
    const name = named.find((n) => reason.startsWith(`${n}:`)) ?? (named.length === 1 ? named[0] : null)
    const f = dep.functions.find((x) => x.name === name)
    await journal({ event: 'rejected', deployment: dep.id, function: name, version: f?.version ?? null, sha256: f?.sha256 ?? null, keyId: f?.keyId ?? null, reason })
  }

  /** §4.1–2: import, self-test, store, pointers, swap. */
  async function activate(dep: Deployment, files: Map<string, ReleaseFiles>, releases: Map<string, Release>) {
    const staged = new Map<string, string>()
    const loaded = new Map<string, LoadedFunction>()
    try {
      // Checked again here: a rollback run between the checks and this job may have taken a route.
      checkRoutes(new Map([...releases].map(([name, r]) => [name, r.routes])), runtime!.functions())
      for (const [name, f] of files) staged.set(name, await ctx.store.stage(name, f))
      for (const [name, r] of releases) loaded.set(name, await prepareRelease(env, staged.get(name)!, r))
    } catch (e) {
      for (const dir of staged.values()) await ctx.store.discard(dir)
      return reject(dep, e instanceof Error ? e.message : String(e))
    }
    try {
      for (const [name, r] of releases) await ctx.store.commit(staged.get(name)!, r)
    } finally {
      // What was not renamed into the store (a failure part way) does not stay in the staging area.
      for (const dir of staged.values()) await ctx.store.discard(dir).catch(() => {})
    }
    const since = new Date().toISOString()
    const before = new Map<string, LoadedFunction | undefined>()
    const next = { ...ctx.pointers }
    for (const [name, r] of releases) {
      const p = pointerOf(ctx, name)
      next[name] = { active: r.version, previous: p.active, lastKnownGood: p.lastKnownGood, highest: r.version,
        trial: { deployment: dep.id, since, restorePrevious: p.previous } }
      before.set(name, runtime!.functions().find((f) => f.info.name === name))
    }
    // Written first, then kept: a failed write leaves memory, disk and the running code as they were.
    await writePointers(next)
    for (const f of dep.functions) await journal({ event: 'trial', deployment: dep.id, function: f.name, version: f.version, sha256: f.sha256, keyId: f.keyId })
    await swapIn(loaded)
    const errors = new Map([...releases.keys()].map((n) => [n, [] as number[]]))
    trial = { dep, errors, before, loaded: [...loaded.values()], done: false,
      timer: setTimeout(() => void exclusive(() => commit()), cfg.DEPLOY_TRIAL_S * 1000) }
    event(dep, 'trial', `swapped in; on trial for ${cfg.DEPLOY_TRIAL_S} s (rolled back at ${cfg.DEPLOY_TRIAL_MAX_ERRORS} errors of a function)`)
  }

  /** §4.4: the window is over without too many errors. */
  async function commit() {
    const t = trial
    if (!t || t.done) return
    t.done = true
    try {
      const next = { ...ctx.pointers }
      for (const name of t.errors.keys()) {
        const p = pointerOf(ctx, name)
        next[name] = { ...p, lastKnownGood: p.active, trial: null }
      }
      ctx.pointers = next
      await saveOrRetry('the commit')
      for (const f of t.loaded) f.info.trial = false
      for (const f of t.dep.functions) await journal({ event: 'committed', deployment: t.dep.id, function: f.name, version: f.version, sha256: f.sha256, keyId: f.keyId })
      event(t.dep, 'committed', 'the trial window ended without too many errors')
    } finally {
      if (trial === t) trial = undefined
      if (current === t.dep) current = undefined
    }
    for (const name of t.errors.keys()) {
      const p = pointerOf(ctx, name)
      const keep = new Set([p.active, p.previous, p.lastKnownGood].filter((r): r is number => typeof r === 'number'))
      const dropped = await ctx.store.prune(name, cfg.RELEASES_KEPT, keep).catch(() => [])
      if (dropped.length) env.log.info({ fn: name, dropped }, 'old releases removed from the store')
    }
  }

  /** Rolls the deployment on trial back as a whole, to the code that ran before it. */
  async function rollBackTrial(reason: string) {
    const t = trial
    if (!t || t.done) return
    t.done = true
    clearTimeout(t.timer)
    try {
      // The old code serves first; then the pointers say so (a failed write is retried: until then a
      // restart finds the trial set and rolls it back the same way).
      await swapIn(t.before)
      for (const f of t.loaded) f.info.trial = false
      const next = { ...ctx.pointers }
      for (const name of t.errors.keys()) {
        const p = pointerOf(ctx, name)
        next[name] = { ...p, active: p.previous ?? p.lastKnownGood, previous: p.trial?.restorePrevious ?? null, trial: null }
      }
      ctx.pointers = next
      await saveOrRetry('the trial rollback')
      for (const f of t.dep.functions) await journal({ event: 'rolled_back', deployment: t.dep.id, function: f.name, version: f.version, sha256: f.sha256, keyId: f.keyId, reason })
      t.dep.reason = reason
      event(t.dep, 'rolled_back', reason)
    } finally {
      if (trial === t) trial = undefined
      if (current === t.dep) current = undefined
    }
  }

  /** Writes `next` to state.json, then makes it the in-memory copy; a failed write changes nothing (503). */
  async function writePointers(next: Pointers) {
    try {
      await ctx.pointerFile.write(next)
    } catch (e) {
      throw new Refused(`cannot write ${ctx.pointerFile.path} (${e instanceof Error ? e.message : String(e)}): nothing was changed`, 503)
    }
    ctx.pointers = next
  }

  /**
   * Writes the in-memory pointers after a change that already happened (a commit, a trial rolled
   * back); a failed write is logged and retried until one succeeds (any later write carries it too).
   */
  let retrying: NodeJS.Timeout | undefined
  async function saveOrRetry(what: string) {
    try {
      await savePointers(ctx)
    } catch (e) {
      env.log.error({ err: errorSummary(e) }, `${what}: writing ${ctx.pointerFile.path} failed; retrying every ${POINTER_RETRY_MS / 1000} s`)
      if (retrying) return
      const again = () => {
        retrying = setTimeout(() => void exclusive(() => savePointers(ctx)).then(() => {
          retrying = undefined
          env.log.info(`${ctx.pointerFile.path} written`)
        }, again), POINTER_RETRY_MS)
        retrying.unref()
      }
      again()
    }
  }

  return {
    /** Gives the deployer the running runtime to swap functions in. */
    attach(rt: Pick<Runtime, 'swap' | 'functions'>) {
      runtime = rt
    },

    /** §4.3: counts the 5xx answers and throws of a release on trial (not those of the code it replaced, still finishing). */
    observe(loaded: LoadedFunction, status: number) {
      const t = trial
      if (!t || t.done || status < 500 || !t.loaded.includes(loaded)) return
      const fn = loaded.info.name
      const seen = t.errors.get(fn)
      if (!seen) return
      seen.push(status)
      if (seen.length === cfg.DEPLOY_TRIAL_MAX_ERRORS) {
        const reason = `${fn}: ${seen.length} errors during the trial (${seen.join(', ')})`
        void exclusive(() => rollBackTrial(reason)).catch((e) => env.log.error({ err: errorSummary(e) }, 'rollback failed'))
      }
    },

    /** Checks a deployment whole; on success starts its activation and returns it (state verifying). */
    submit(parts: Parts): Promise<Deployment> {
      return exclusive(async () => {
        off()
        const dep: Deployment = { id: randomUUID(), state: 'verifying', functions: [], reason: null, events: [] }
        if (current) throw new Refused(`deployment ${current.id} is still ${current.state}: one deployment at a time`, 409)
        remember(dep)
        let releases: Map<string, Release>
        let files: Map<string, ReleaseFiles>
        const named = [...new Set([...parts.keys()].flatMap((k) => /^([a-z][a-z0-9-]{0,62})\./.exec(k)?.[1] ?? []))]
        try {
          files = releasesOf(parts)
          for (const name of files.keys()) await journal({ event: 'received', deployment: dep.id, function: name })
          releases = checkDeployment(ctx, files, runtime!.functions())
        } catch (e) {
          await reject(dep, e instanceof Error ? e.message : String(e), named)
          throw e instanceof Refused ? e : new Refused(String(e))
        }
        dep.functions = [...releases.values()].map((r) => ({ name: r.function, version: r.version, sha256: r.sha256, keyId: r.keyId }))
        event(dep, 'verifying', `accepted ${dep.functions.map((f) => `${f.name}@${f.version}`).join(', ')}; importing`)
        current = dep
        void exclusive(() => activate(dep, files, releases)).catch(async (e) => {
          env.log.error({ err: errorSummary(e) }, 'activation failed')
          if (dep.state === 'verifying') await reject(dep, `activation failed: ${e instanceof Error ? e.message : String(e)}`)
        }).finally(() => {
          if (dep.state === 'rejected' && current === dep) current = undefined
        })
        return dep
      })
    },

    get: (id: string) => deployments.get(id),

    /** Back to `previous` (or `version`, which must be on the device and verify), at once, from the store. */
    rollback(name: string, version?: Ref): Promise<Pointer> {
      return exclusive(async () => {
        off()
        if (trial && !trial.done && trial.errors.has(name)) {
          if (version !== undefined) {
            throw new Refused(`${name}: deployment ${trial.dep.id} is on trial; a rollback now takes the whole deployment back to the code before it: ask without a version, then for ${version}`, 409)
          }
          await rollBackTrial(`rollback of ${name} requested during the trial`)
          return pointerOf(ctx, name)
        }
        const p = pointerOf(ctx, name)
        if (!FUNCTION_NAME.test(name) || (!Object.hasOwn(ctx.pointers, name) && !runtime!.functions().some((f) => f.info.name === name))) throw new Refused(`no function named ${name}`, 404)
        const target = version ?? p.previous
        if (target === null) throw new Refused(`${name}: there is no previous release to roll back to`, 409)
        const running = runtime!.functions().find((f) => f.info.name === name)?.info.version ?? 'factory'
        if (target === running) throw new Refused(`${name}: ${target} is already running`, 409)
        // Back to `factory` for a function the factory set does not have (one a deployment added): it is
        // no longer served, as a trial rollback of that deployment would leave it.
        const manifest = target === 'factory' ? await readManifest(ctx.factoryDir).catch(() => undefined) : undefined
        const gone = manifest !== undefined && !manifest.functions.some((f) => f.name === name)
        const fn = gone ? undefined : await loadRef(ctx, name, target, manifest)
        if (fn) checkRoutes(new Map([[name, fn.mod.routes]]), runtime!.functions())
        await writePointers({ ...ctx.pointers, [name]: { ...p, active: target, previous: p.active, trial: null } })
        await swapIn(new Map([[name, fn]]))
        await journal({ event: 'rolled_back', function: name, version: target, sha256: fn?.info.sha256 ?? null, reason: `rollback on demand from ${p.active}` })
        env.log.info({ fn: name, from: p.active, to: target }, 'rolled back on demand')
        return ctx.pointers[name]
      })
    },
  }
}

export type Deployer = ReturnType<typeof createDeployer>
