// Field deployment in process, with faults injected: writes that fail at start, imports that never
// settle, state.json writes that fail during a deployment.
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import type { Env, RouteDef } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { Hono } from 'hono'
import { createContext, type DeployContext } from '../../runtime/deploy/context'
import { createAdminApp } from '../../runtime/deploy/admin'
import { createDeployer } from '../../runtime/deploy/deployments'
import { createJournal, verifyChain } from '../../runtime/deploy/journal'
import { prepareRelease, SELF_TEST_MS } from '../../runtime/deploy/prepare'
import { ReleaseSchema } from '../../runtime/deploy/release'
import { loadAtStart } from '../../runtime/deploy/startup'
import { parseReleaseKeys, sha256Hex } from '../../runtime/deploy/verify'
import type { LoadedFunction } from '../../runtime/registry'
import { makeRelease } from '../../scripts/release-files'
import { SALTS } from '../helpers/vectors'
import { storeRelease } from '../helpers/deploy'
import * as v from 'valibot'

const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'deploy-unit-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
afterEach(() => {
  vi.useRealTimers()
})

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const keys = parseReleaseKeys(publicKey.export({ type: 'spki', format: 'pem' }) as string)
const quiet = { debug() {}, info() {}, warn() {}, error() {} }
const envOf = (cacheDir: string, vars: Record<string, string> = {}) =>
  ({ config: parseConfig({ ...SALTS, CACHE_DIR: cacheDir, ...vars }), log: quiet, warnings: [] as string[] }) as unknown as Env
/** A factory folder whose manifest lists no function. */
const emptyFactory = () => {
  const d = tmp()
  writeFileSync(join(d, 'manifest.json'), JSON.stringify({ version: '0', builtAt: new Date().toISOString(), functions: [] }))
  return d
}
const artifactOf = (name: string, text: string, routes: RouteDef[], top = '') => Buffer.from(`${top}
export default { name: ${JSON.stringify(name)}, routes: ${JSON.stringify(routes)}, async fetch() { return Response.json({ version: ${JSON.stringify(text)} }) } }
`)
const PROBE: RouteDef[] = [{ method: 'GET', path: '/probe', body: 'none' }]
const partsOf = (name: string, version: number, artifact: Buffer, routes = PROBE) => {
  const { json, sig } = makeRelease({ name, artifact, routes, version, key: privateKey })
  return new Map<string, Uint8Array>([[`${name}.release.json`, json], [`${name}.release.sig`, Buffer.from(sig)], [`${name}.mjs`, artifact]])
}
/** Lets real I/O run while fake timers advance by `step` ms, until `p` settles. */
async function settle<T>(p: Promise<T>, step = 1000, max = 60): Promise<PromiseSettledResult<T>> {
  let out: PromiseSettledResult<T> | undefined
  void p.then((value) => { out = { status: 'fulfilled', value } }, (reason) => { out = { status: 'rejected', reason } })
  for (let i = 0; i < max && !out; i++) {
    await sleep(20)
    await vi.advanceTimersByTimeAsync(step)
  }
  if (!out) throw new Error('did not settle')
  return out
}

describe('start-up never fails because of a write', () => {
  it('a journal and a state.json that cannot be written: the start goes on, with warnings', async () => {
    const cache = tmp()
    // state.json and journal.ndjson are folders: reading and appending both fail.
    mkdirSync(join(cache, 'functions/state.json'), { recursive: true })
    mkdirSync(join(cache, 'functions/journal.ndjson'), { recursive: true })
    const env = envOf(cache)
    const ctx = await createContext(env, keys, emptyFactory())
    expect(env.warnings.join('\n')).toMatch(/the journal append failed at start/)
    // A trial left by a crash, rolled back at start, with state.json unwritable.
    ctx.pointers.gone = { active: 2, previous: 1, lastKnownGood: 1, highest: 2, trial: { deployment: 'd', since: new Date().toISOString(), restorePrevious: null } }
    await expect(loadAtStart(ctx)).resolves.toEqual([])
    // (Neither release is on the device: both leave the pointers.)
    expect(ctx.pointers.gone).toMatchObject({ active: 'factory', trial: null })
    expect(env.warnings.join('\n')).toMatch(/state\.json failed at start/)
  })
})

describe('an import that never settles', () => {
  it('rejects the release once the time limit passes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const dir = tmp()
    const artifact = artifactOf('stuck', 'x', PROBE, 'await new Promise(() => {})')
    writeFileSync(join(dir, 'stuck.mjs'), artifact)
    const { json } = makeRelease({ name: 'stuck', artifact, routes: PROBE, version: 1, key: privateKey })
    const r = v.parse(ReleaseSchema, JSON.parse(json.toString()))
    const out = await settle(prepareRelease(envOf(tmp()), dir, r), SELF_TEST_MS / 4)
    expect(out).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/stuck: the artifact failed to import: the import did not settle/) } })
  })

  it('at start, a stored release whose import hangs gives way to the next candidate', async () => {
    const cache = tmp()
    const env = envOf(cache)
    const ctx = await createContext(env, keys, emptyFactory())
    const good = artifactOf('stuck', 'one', PROBE)
    const bad = artifactOf('stuck', 'two', PROBE, 'await new Promise(() => {})')
    for (const [version, artifact] of [[1, good], [2, bad]] as const) {
      storeRelease(ctx.store.root, { name: 'stuck', artifact, routes: PROBE, version, key: privateKey })
    }
    ctx.pointers.stuck = { active: 2, previous: 1, lastKnownGood: 1, highest: 2, trial: null }
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const out = await settle(loadAtStart(ctx))
    expect(out.status).toBe('fulfilled')
    expect((out as PromiseFulfilledResult<LoadedFunction[]>).value.map((f) => [f.info.name, f.info.version])).toEqual([['stuck', 1]])
    expect(env.warnings.join('\n')).toMatch(/2: the import did not settle/)
  })
})

/** A deployer over a runtime that only holds its functions. */
async function deployer(vars: Record<string, string> = {}) {
  const env = envOf(tmp(), { DEPLOY_TRIAL_S: '1', ...vars })
  const ctx = await createContext(env, keys, emptyFactory())
  let fns: LoadedFunction[] = []
  const d = createDeployer(ctx)
  d.attach({ functions: () => fns, swap: async (change) => { fns = await change(fns); return true } })
  const write = ctx.pointerFile.write
  const faults = { pointers: false }
  ctx.pointerFile.write = (p) => faults.pointers ? Promise.reject(new Error('ENOSPC: no space left on device')) : write(p)
  const until = async (id: string, states: string[]) => {
    for (let i = 0; i < 400; i++) {
      const s = d.get(id)!.state
      if (states.includes(s)) return s
      await new Promise((r) => setTimeout(r, 25))
    }
    throw new Error(`${id} still ${d.get(id)!.state}`)
  }
  return { ctx, d, faults, until, running: () => fns, onDisk: () => JSON.parse(readFileSync(ctx.pointerFile.path, 'utf8')).functions }
}

const route = (path: string) => ({ method: 'GET', path, body: 'none' }) as RouteDef
/** Deploys release `version` of `name` serving `routes` through `d`; resolves with the state it ends in. */
async function pushRoutes(d: Awaited<ReturnType<typeof deployer>>, name: string, version: number, routes: RouteDef[]) {
  const dep = await d.d.submit(partsOf(name, version, artifactOf(name, `${name}${version}`, routes), routes))
  return d.until(dep.id, ['committed', 'rejected'])
}

describe('state.json and memory stay in step', () => {
  it('a failed write at activation changes nothing: memory, disk and the running code as before', async () => {
    const { ctx, d, faults, until, running } = await deployer()
    faults.pointers = true
    const dep = await d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await until(dep.id, ['rejected', 'trial', 'committed'])).toBe('rejected')
    expect(ctx.pointers.probe).toBeUndefined()
    expect(running()).toEqual([])
    faults.pointers = false
    const again = await d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await until(again.id, ['rejected', 'committed'])).toBe('committed')
  })

  it('a deployment shown rejected is over: the next one is taken, even while the rejection is still being journaled', async () => {
    const { ctx, d, until } = await deployer()
    const append = ctx.journal.append
    let gate: (() => void) | undefined
    ctx.journal.append = async (input) => {
      if (input.event === 'rejected') await new Promise<void>((ok) => { gate = ok })
      return append(input)
    }
    const dep = await d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE, 'throw new Error("broken at import")')))
    expect(await until(dep.id, ['rejected', 'trial'])).toBe('rejected')
    // The operator saw "rejected" and deploys the fixed release at once.
    const next = d.submit(partsOf('probe', 2, artifactOf('probe', 'two', PROBE)))
    while (!gate) await sleep(5)
    gate()
    const second = await next
    expect(await until(second.id, ['trial', 'rejected'])).toBe('trial')
  })

  it('a failed write at commit still ends the trial, is retried, and the next deployment is taken', async () => {
    const { ctx, d, faults, until, onDisk } = await deployer()
    const dep = await d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await until(dep.id, ['trial'])).toBe('trial')
    faults.pointers = true
    expect(await until(dep.id, ['committed', 'rolled_back'])).toBe('committed')
    expect(ctx.pointers.probe).toMatchObject({ active: 1, lastKnownGood: 1, trial: null })
    expect(onDisk().probe.trial).not.toBeNull()
    faults.pointers = false
    // The failed write is retried (every 5 s) without waiting for another deployment.
    for (let i = 0; i < 160 && onDisk().probe.trial !== null; i++) await sleep(50)
    expect(onDisk().probe).toMatchObject({ active: 1, lastKnownGood: 1, trial: null })
    const next = await d.submit(partsOf('probe', 2, artifactOf('probe', 'two', PROBE)))
    expect(await until(next.id, ['committed', 'rejected'])).toBe('committed')
    expect(onDisk().probe).toMatchObject({ active: 2, previous: 1, lastKnownGood: 2, trial: null })
  })

  it('a failed write at a trial rollback: the old code serves and the trial ends', async () => {
    const { ctx, d, faults, until, running } = await deployer({ DEPLOY_TRIAL_S: '60' })
    const dep = await d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await until(dep.id, ['trial'])).toBe('trial')
    faults.pointers = true
    const probe = running().find((f) => f.info.name === 'probe')!
    for (let i = 0; i < 3; i++) d.observe(probe, 500)
    expect(await until(dep.id, ['rolled_back'])).toBe('rolled_back')
    expect(running()).toEqual([])
    expect(ctx.pointers.probe).toMatchObject({ active: 'factory', trial: null })
    faults.pointers = false
    const next = await d.submit(partsOf('probe', 2, artifactOf('probe', 'two', PROBE)))
    expect(await until(next.id, ['trial', 'rejected'])).toBe('trial')
  })
})

describe('the store after a crash or a full disk', () => {
  it('a release folder left by an activation that never wrote its pointers: same bytes reused, other bytes replaced', async () => {
    const ctx: DeployContext = await createContext(envOf(tmp()), keys, emptyFactory())
    const artifact = artifactOf('probe', 'one', PROBE)
    const { json, sig } = makeRelease({ name: 'probe', artifact, routes: PROBE, version: 3, key: privateKey })
    const files = { artifact, json, sig: Buffer.from(sig) }
    const r = v.parse(ReleaseSchema, JSON.parse(json.toString()))
    const first = await ctx.store.commit(await ctx.store.stage('probe', files), r)
    expect(await ctx.store.commit(await ctx.store.stage('probe', files), r)).toBe(first)
    writeFileSync(join(first, 'release.sig'), 'damaged')
    expect(await ctx.store.commit(await ctx.store.stage('probe', files), r)).toBe(first)
    expect(readFileSync(join(first, 'release.sig'), 'utf8')).toBe(sig)
    expect(readdirSync(join(ctx.store.root, '..', 'tmp/releases'))).toEqual([])
  })

  it('a state.json whose highest is below a version its pointers name (hand-edited, restored) is read with highest raised', async () => {
    const cache = tmp()
    const root = join(cache, 'functions')
    mkdirSync(root, { recursive: true })
    writeFileSync(join(root, 'state.json'), JSON.stringify({ v: 1, functions: {
      probe: { active: 5, previous: 3, lastKnownGood: 3, highest: 2, trial: null },
      other: { active: 2, previous: 1, lastKnownGood: 1, highest: 9, trial: { deployment: 'd', since: new Date().toISOString(), restorePrevious: 7 } },
    } }))
    const ctx = await createContext(envOf(cache), keys, emptyFactory())
    expect(ctx.pointers.probe.highest).toBe(5)
    expect(ctx.pointers.other.highest).toBe(9)
  })

  it('a state.json temporary left by a kill mid-write is removed at start, state.json kept', async () => {
    const cache = tmp()
    const root = join(cache, 'functions')
    mkdirSync(root, { recursive: true })
    writeFileSync(join(root, 'state.json'), JSON.stringify({ v: 1, functions: { probe: { active: 'factory', previous: null, lastKnownGood: 'factory', highest: 4, trial: null } } }))
    writeFileSync(join(root, 'state.json.0123abcd.tmp'), '{"v":1,"func')
    const ctx = await createContext(envOf(cache), keys, emptyFactory())
    expect(readdirSync(root).sort()).toEqual(['state.json'])
    expect(ctx.pointers.probe.highest).toBe(4)
  })

  it('a state.json that parses but is not a pointer file: the factory set runs and the store keeps the downgrade floor', async () => {
    const cache = tmp()
    const env = envOf(cache, { DEPLOY_TRIAL_S: '60' })
    const first = await createContext(env, keys, emptyFactory())
    const artifact = artifactOf('probe', 'three', PROBE)
    const { json, sig } = makeRelease({ name: 'probe', artifact, routes: PROBE, version: 3, key: privateKey })
    await first.store.commit(await first.store.stage('probe', { artifact, json, sig: Buffer.from(sig) }), v.parse(ReleaseSchema, JSON.parse(json.toString())))
    // A hand edit: valid JSON, no highest, a trial that is not one.
    writeFileSync(first.pointerFile.path, JSON.stringify({ v: 1, functions: { probe: { active: 3, trial: 'yes' } } }))
    const ctx = await createContext(env, keys, emptyFactory())
    expect(env.warnings.join('\n')).toMatch(/state\.json is unreadable \(not a pointer file: functions\.probe\.previous: /)
    expect(ctx.pointers.probe).toMatchObject({ active: 'factory', highest: 3, trial: null })
    const d = createDeployer(ctx)
    d.attach({ functions: () => [], swap: async () => true })
    await expect(d.submit(partsOf('probe', 2, artifactOf('probe', 'two', PROBE)))).rejects.toMatchObject({ status: 422, message: expect.stringMatching(/version 2 is not above 3/) })
  })

  it('a move into the store that fails leaves nothing in the staging area', async () => {
    const d = await deployer()
    d.ctx.store.commit = () => Promise.reject(new Error('EIO: i/o error'))
    const dep = await d.d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await d.until(dep.id, ['rejected', 'trial'])).toBe('rejected')
    expect(readdirSync(join(d.ctx.store.root, '..', 'tmp/releases'))).toEqual([])
  })

  it('a stage that fails part way leaves nothing in the staging area', async () => {
    const ctx = await createContext(envOf(tmp()), keys, emptyFactory())
    const bad = { artifact: Buffer.from('x'), json: Buffer.from('{}'), sig: undefined as unknown as Buffer }
    await expect(ctx.store.stage('probe', bad)).rejects.toThrow()
    expect(readdirSync(join(ctx.store.root, '..', 'tmp/releases'))).toEqual([])
  })
})

describe('the signed routes', () => {
  it('match whatever the key order of the module or of release.json; a real difference does not', async () => {
    const declared = [{ method: 'GET', path: '/zz', public: true, body: 'none' }] as RouteDef[]
    const d = await deployer()
    const dep = await d.d.submit(partsOf('zz', 1, artifactOf('zz', 'one', declared), declared))
    expect(await d.until(dep.id, ['committed', 'rejected'])).toBe('committed')
    const reordered = [{ body: 'none', public: true, path: '/zz', method: 'GET' }] as RouteDef[]
    const dep2 = await d.d.submit(partsOf('zz', 2, artifactOf('zz', 'two', reordered), declared))
    expect(await d.until(dep2.id, ['committed', 'rejected'])).toBe('committed')
    const notPublic = [{ body: 'none', path: '/zz', method: 'GET' }] as RouteDef[]
    const dep3 = await d.d.submit(partsOf('zz', 3, artifactOf('zz', 'three', notPublic), declared))
    expect(await d.until(dep3.id, ['committed', 'rejected'])).toBe('rejected')
    expect(d.d.get(dep3.id)!.reason).toMatch(/routes are not the signed ones/)
  })
})

describe('routes that overlap without being equal', () => {
  // Hono answers a request with the first route registered that matches it: a parameter or a
  // wildcard of one function would take requests of another's route (functions are mounted in name order).
  it('are a collision: refused (422) with both routes named; disjoint ones are not', async () => {
    const d = await deployer()
    const push = (name: string, version: number, routes: RouteDef[]) => pushRoutes(d, name, version, routes)
    expect(await push('mm', 1, [route('/status'), route('/items/list')])).toBe('committed')
    await expect(d.d.submit(partsOf('aa', 1, artifactOf('aa', 'a1', [route('/:page')]), [route('/:page')])))
      .rejects.toMatchObject({ status: 422, message: 'aa: route GET /:page overlaps GET /metrics of the runtime' })
    await expect(d.d.submit(partsOf('aa', 1, artifactOf('aa', 'a1', [route('/:page/list')]), [route('/:page/list')])))
      .rejects.toMatchObject({ status: 422, message: 'aa: route GET /:page/list overlaps GET /items/list of mm' })
    await expect(d.d.submit(partsOf('zz', 1, artifactOf('zz', 'z1', [route('/items/*')]), [route('/items/*')])))
      .rejects.toMatchObject({ status: 422, message: 'zz: route GET /items/* overlaps GET /items/list of mm' })
    await expect(d.d.submit(partsOf('cc', 1, artifactOf('cc', 'c1', [route('/metrics')]), [route('/metrics')])))
      .rejects.toMatchObject({ status: 422, message: 'cc: route GET /metrics is already served by the runtime' })
    expect(await push('bb', 1, [route('/things/:id'), route('/things')])).toBe('committed')
    expect(d.running().map((f) => f.info.name)).toEqual(['bb', 'mm'])
  })
})

describe('rollback on demand', () => {
  it('is refused when the release it goes back to serves a route another function took', async () => {
    const d = await deployer()
    const push = async (name: string, version: number, routes: RouteDef[]) => expect(await pushRoutes(d, name, version, routes)).toBe('committed')
    await push('aa', 1, [route('/a'), route('/x')])
    await push('aa', 2, [route('/a')])
    await push('bb', 1, [route('/x'), route('/b')])
    await expect(d.d.rollback('aa', 1)).rejects.toMatchObject({ status: 422, message: 'aa: route GET /x is already served by bb' })
    expect(d.running().find((f) => f.info.name === 'aa')!.info.version).toBe(2)
    expect(d.ctx.pointers.aa).toMatchObject({ active: 2 })
  })

  it('a deployment checked before a rollback that took its route is refused when its turn comes', async () => {
    const d = await deployer()
    const push = async (name: string, version: number, routes: RouteDef[]) => expect(await pushRoutes(d, name, version, routes)).toBe('committed')
    await push('aa', 1, [route('/a'), route('/x')])
    await push('aa', 2, [route('/a')])
    const bb = [route('/x'), route('/b')]
    const [dep] = await Promise.all([d.d.submit(partsOf('bb', 1, artifactOf('bb', 'b1', bb), bb)), d.d.rollback('aa', 1)])
    expect(await d.until(dep.id, ['committed', 'rejected', 'trial'])).toBe('rejected')
    expect(d.d.get(dep.id)!.reason).toBe('bb: route GET /x is already served by aa')
    expect(d.running().map((f) => f.info.name)).toEqual(['aa'])
  })

  it('of a function the factory set does not have, back to factory, stops serving it (as a trial rollback does)', async () => {
    const d = await deployer()
    const dep = await d.d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await d.until(dep.id, ['committed', 'rejected'])).toBe('committed')
    expect(d.running().map((f) => f.info.name)).toEqual(['probe'])
    await expect(d.d.rollback('probe')).resolves.toMatchObject({ active: 'factory', previous: 1, trial: null })
    expect(d.running()).toEqual([])
    expect(d.onDisk().probe).toMatchObject({ active: 'factory', previous: 1 })
    // And forward again to the release still on the device.
    await expect(d.d.rollback('probe', 1)).resolves.toMatchObject({ active: 1, previous: 'factory' })
    expect(d.running().map((f) => [f.info.name, f.info.version])).toEqual([['probe', 1]])
  })

  it('to a given version during a trial is refused (409), and nothing changes', async () => {
    const d = await deployer({ DEPLOY_TRIAL_S: '60' })
    const dep = await d.d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await d.until(dep.id, ['trial'])).toBe('trial')
    await expect(d.d.rollback('probe', 'factory')).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/is on trial/) })
    expect(d.d.get(dep.id)!.state).toBe('trial')
    await expect(d.d.rollback('probe')).resolves.toMatchObject({ active: 'factory', trial: null })
  })
})

describe('route paths the router cannot compile', () => {
  // Hono builds its matcher on the first request: one route whose pattern does not compile makes
  // every request of the callers' port throw (a 500 before any function runs, so the trial sees no error).
  const bad = [{ method: 'GET', path: '/probe/:x{[}', body: 'none' }] as RouteDef[]

  it('are refused (422) before anything changes, and the app keeps answering', async () => {
    const d = await deployer()
    await expect(d.d.submit(partsOf('probe', 1, artifactOf('probe', 'one', bad), bad)))
      .rejects.toMatchObject({ status: 422, message: expect.stringMatching(/^probe: route GET \/probe\/:x\{\[\} cannot be served/) })
    expect(d.running()).toEqual([])
    expect(d.ctx.pointers.probe).toBeUndefined()
    expect(await d.ctx.store.list('probe')).toEqual([])
    const dep = await d.d.submit(partsOf('probe', 1, artifactOf('probe', 'one', PROBE)))
    expect(await d.until(dep.id, ['trial', 'rejected'])).toBe('trial')
    // The routes that run, on one router as the runtime's app mounts them: its matcher compiles.
    const app = new Hono()
    for (const f of d.running()) for (const r of f.mod.routes) app.on(r.method, r.path, () => f.mod.fetch(new Request('http://x/'), d.ctx.env, {} as never))
    expect((await app.request('/probe')).status).toBe(200)
  })

  it('in a stored release give way at start to the next candidate', async () => {
    const env = envOf(tmp())
    const ctx = await createContext(env, keys, emptyFactory())
    for (const [version, routes] of [[1, PROBE], [2, bad]] as const) {
      storeRelease(ctx.store.root, { name: 'probe', artifact: artifactOf('probe', `v${version}`, routes), routes, version, key: privateKey })
    }
    ctx.pointers.probe = { active: 2, previous: 1, lastKnownGood: 1, highest: 2, trial: null }
    const loaded = await loadAtStart(ctx)
    expect(loaded.map((f) => [f.info.name, f.info.version])).toEqual([['probe', 1]])
    expect(env.warnings.join('\n')).toMatch(/2: probe: route GET \/probe\/:x\{\[\} cannot be served/)
  })
})

describe('the rollback route', () => {
  it('reads at most 4 KiB of body (413), declared or streamed', async () => {
    const d = await deployer()
    const app = createAdminApp(d.ctx, d.d, d.running)
    const url = 'http://admin/admin/functions/probe/rollback'
    const big = JSON.stringify({ version: 1, pad: 'x'.repeat(5000) })
    expect((await app.request(url, { method: 'POST', body: big })).status).toBe(413)
    const stream = new ReadableStream({ pull(c) { c.enqueue(new TextEncoder().encode(' '.repeat(1024))) } })
    const r = await app.request(url, { method: 'POST', body: stream, duplex: 'half' } as RequestInit)
    expect(r.status).toBe(413)
    expect((await app.request(url, { method: 'POST', body: '{}' })).status).toBe(404)
  })
})

describe('the journal', () => {
  it('an append cut just before its newline stays a line of the chain: the next append chains to it', async () => {
    const root = tmp()
    const j = createJournal(root)
    await j.append({ event: 'received' })
    await j.append({ event: 'committed' })
    writeFileSync(j.path, readFileSync(j.path, 'utf8').slice(0, -1)) // the second append lost its '\n'
    expect(verifyChain(await j.read())).toEqual({ intact: true })
    await createJournal(root).append({ event: 'received' }) // a new process
    expect(verifyChain(await j.read())).toEqual({ intact: true })
    expect((await j.read()).split('\n').filter(Boolean)).toHaveLength(3)
  })

  it('a whole last line edited so that it no longer parses breaks the chain, also after the next append', async () => {
    const root = tmp()
    const j = createJournal(root)
    await j.append({ event: 'received', deployment: 'd1', function: 'load' })
    await j.append({ event: 'rejected', deployment: 'd1', function: 'load', reason: 'signature does not verify' })
    const lines = readFileSync(j.path, 'utf8').trimEnd().split('\n')
    // The last event rewritten: one character dropped, so it is no JSON any more, but the line is whole.
    lines[1] = lines[1].replace('"rejected"', '"committed').slice(0, -1)
    writeFileSync(j.path, lines.join('\n') + '\n')
    expect(verifyChain(await j.read())).toEqual({ intact: false, brokenAt: 2 })
    // The next append (a new process) does not launder it by chaining past it.
    const reopened = createJournal(root)
    await reopened.append({ event: 'received', deployment: 'd2', function: 'load' })
    expect(verifyChain(await reopened.read())).toMatchObject({ intact: false })
  })

  it('a line cut by a crash is reported as a torn tail, and the chain goes on after it', async () => {
    const root = tmp()
    const j = createJournal(root)
    for (const event of ['received', 'trial', 'committed'] as const) await j.append({ event, function: 'probe' })
    const whole = readFileSync(j.path, 'utf8')
    writeFileSync(j.path, whole.slice(0, -40))
    expect(verifyChain(await j.read())).toEqual({ intact: true, torn: [3], tornTail: true })
    const reopened = createJournal(root)
    await reopened.append({ event: 'received', function: 'probe' })
    await reopened.append({ event: 'rejected', function: 'probe' })
    expect(verifyChain(await reopened.read())).toEqual({ intact: true, torn: [3] })
    const lines = (await reopened.read()).trim().split('\n')
    expect(lines).toHaveLength(5)
    // An edited whole line still breaks it.
    lines[3] = lines[3].replace('"received"', '"rejected"')
    expect(verifyChain(lines.join('\n') + '\n')).toEqual({ intact: false, brokenAt: 5 })
  })

  it('one refused request naming many functions writes one rejected line', async () => {
    const d = await deployer()
    const parts = new Map<string, Uint8Array>()
    for (let i = 0; i < 50; i++) for (const f of ['release.json', 'release.sig', 'mjs']) parts.set(`n${i}.${f}`, Buffer.from('x'))
    const before = (await d.ctx.journal.read()).split('\n').length
    await expect(d.d.submit(parts)).rejects.toMatchObject({ status: 422 })
    const lines = (await d.ctx.journal.read()).trim().split('\n').slice(before - 1).map((l) => JSON.parse(l))
    expect(lines.filter((l) => l.event === 'rejected')).toHaveLength(1)
    expect(lines.at(-1)).toMatchObject({ event: 'rejected', function: 'n0' })
  })
})

describe('function names are looked up as own keys', () => {
  it('a release named constructor gets its own pointers; __proto__ and constructor are no function before', async () => {
    const d = await deployer({ DEPLOY_TRIAL_S: '60' })
    for (const name of ['constructor', '__proto__', 'toString']) await expect(d.d.rollback(name)).rejects.toMatchObject({ status: 404 })
    const routes = [{ method: 'GET', path: '/ctor', body: 'none' }] as RouteDef[]
    const dep = await d.d.submit(partsOf('constructor', 1, artifactOf('constructor', 'c1', routes), routes))
    expect(await d.until(dep.id, ['trial', 'rejected'])).toBe('trial')
    expect(d.onDisk().constructor).toMatchObject({ active: 1, previous: 'factory', highest: 1 })
    await expect(d.d.rollback('constructor')).resolves.toMatchObject({ active: 'factory', trial: null })
  })
})
