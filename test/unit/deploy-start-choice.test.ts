// What runs at start (deploy.md §2–3), beyond the order active → previous → last known good →
// factory: the pointers follow what runs (a rollback "to previous" reaches code that ran), and a
// candidate that would serve a route another function serves does not load.
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { Env, RouteDef } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { createContext, type DeployContext } from '../../runtime/deploy/context'
import { createDeployer } from '../../runtime/deploy/deployments'
import { loadAtStart } from '../../runtime/deploy/startup'
import { parseReleaseKeys, sha256Hex } from '../../runtime/deploy/verify'
import type { LoadedFunction } from '../../runtime/registry'
import { makeRelease } from '../../scripts/release-files'
import { SALTS } from '../helpers/vectors'
import { storeRelease } from '../helpers/deploy'

const dirs: string[] = []
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'start-choice-')); dirs.push(d); return d }
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const keys = parseReleaseKeys(publicKey.export({ type: 'spki', format: 'pem' }) as string)
const quiet = { debug() {}, info() {}, warn() {}, error() {} }
const PROBE: RouteDef[] = [{ method: 'GET', path: '/probe', body: 'none' }]
const artifactOf = (name: string, says: string) =>
  Buffer.from(`export default { name: ${JSON.stringify(name)}, routes: ${JSON.stringify(PROBE)}, async fetch() { return new Response(${JSON.stringify(says)}) } }\n`)

/** A deploy context over an empty store and a factory set of `factory` (name → artifact). */
async function world(factory: Record<string, Buffer> = {}): Promise<{ ctx: DeployContext; env: Env }> {
  const dir = tmp()
  const functions = Object.entries(factory).map(([name, artifact]) => {
    writeFileSync(join(dir, `${name}.mjs`), artifact)
    return { name, file: `${name}.mjs`, sha256: sha256Hex(artifact), bytes: artifact.length, routes: PROBE }
  })
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ version: '0', builtAt: new Date().toISOString(), functions }))
  const env = ({ config: parseConfig({ ...SALTS, CACHE_DIR: tmp(), DEPLOY_TRIAL_S: '1' }), log: quiet, warnings: [] as string[] }) as unknown as Env
  return { ctx: await createContext(env, keys, dir), env }
}

/** Stores release `version` of `name` as the store would; `corrupt` changes the artifact after signing. */
function store(ctx: DeployContext, name: string, version: number, corrupt = false, key = privateKey): void {
  const artifact = artifactOf(name, `${name} v${version}`)
  storeRelease(ctx.store.root, { name, artifact, routes: PROBE, version, key, onDisk: corrupt ? Buffer.concat([artifact, Buffer.from('//x\n')]) : undefined })
}

/** Deploys release `version` of probe (answering `says`) through `d`, waits for its commit; returns its artifact. */
async function deployCommitted(d: ReturnType<typeof createDeployer>, version: number, says: string): Promise<Buffer> {
  const artifact = artifactOf('probe', says)
  const { json, sig } = makeRelease({ name: 'probe', artifact, routes: PROBE, version, key: privateKey })
  const dep = await d.submit(new Map<string, Uint8Array>([['probe.release.json', json], ['probe.release.sig', Buffer.from(sig)], ['probe.mjs', artifact]]))
  for (let i = 0; i < 200 && d.get(dep.id)!.state !== 'committed'; i++) await new Promise((r) => setTimeout(r, 25))
  expect(d.get(dep.id)!.state).toBe('committed')
  return artifact
}

/** Release `version` signed by `key` (a key not in RELEASE_KEYS: refused, not damaged). */
const storeSignedBy = (ctx: DeployContext, name: string, version: number, key: typeof privateKey) => store(ctx, name, version, false, key)

it('after a fallback at start the pointers name what runs, and a rollback goes back to it, not to the broken release', async () => {
  const { ctx } = await world()
  store(ctx, 'probe', 1)
  store(ctx, 'probe', 2, true)
  ctx.pointers.probe = { active: 2, previous: 1, lastKnownGood: 2, highest: 2, trial: null }
  let fns: LoadedFunction[] = await loadAtStart(ctx)
  expect(fns.map((f) => f.info.version)).toEqual([1])
  expect(ctx.pointers.probe).toMatchObject({ active: 1, previous: 'factory', lastKnownGood: 1, highest: 2, trial: null })
  expect(await ctx.journal.read()).toMatch(/"event":"fallback_at_start".*sha256 .* is not the signed/)

  const d = createDeployer(ctx)
  d.attach({ functions: () => fns, swap: async (change) => { fns = await change(fns); return true } })
  await deployCommitted(d, 3, 'probe v3')
  await d.rollback('probe')
  expect(fns.map((f) => f.info.version)).toEqual([1])
})

it('a stored release whose route a function of the image serves falls back; the image\'s function serves it', async () => {
  const { ctx, env } = await world({ bb: artifactOf('bb', 'bb') })
  store(ctx, 'aa', 1)
  ctx.pointers.aa = { active: 1, previous: 'factory', lastKnownGood: 1, highest: 1, trial: null }
  const loaded = await loadAtStart(ctx)
  expect(loaded.map((f) => f.info.name)).toEqual(['bb'])
  expect(env.warnings).toEqual([expect.stringMatching(/^fallback at start: aa: no artifact could be loaded \(1: route GET \/probe collides with GET \/probe of bb; factory: .*\); its routes are not served$/)])
  expect(await ctx.journal.read()).toMatch(/"event":"fallback_at_start","at":"[^"]+","deployment":null,"function":"aa"/)
})

it('a release that fails for a cause outside it (a key set without its key) keeps its pointers: it runs again with the right keys', async () => {
  const rotated = generateKeyPairSync('ed25519')
  const { ctx, env } = await world({ probe: artifactOf('probe', 'factory') })
  store(ctx, 'probe', 1)
  ctx.pointers.probe = { active: 1, previous: 'factory', lastKnownGood: 1, highest: 1, trial: null }
  await ctx.pointerFile.write(ctx.pointers)
  expect((await loadAtStart(ctx)).map((f) => f.info.version)).toEqual([1])
  // One start whose RELEASE_KEYS holds only a new key: the factory runs…
  const other = await createContext(env, parseReleaseKeys(rotated.publicKey.export({ type: 'spki', format: 'pem' }) as string), ctx.factoryDir)
  expect((await loadAtStart(other)).map((f) => f.info.version)).toEqual(['factory'])
  expect(await other.pointerFile.read()).toMatchObject({ probe: { active: 1, previous: 'factory', lastKnownGood: 1 } })
  // …and with the old key again, release 1 does.
  const again = await createContext(env, keys, ctx.factoryDir)
  expect((await loadAtStart(again)).map((f) => f.info.version)).toEqual([1])
})

it('a damaged release leaves the pointers even when another failed for a passing cause; that one keeps its place', async () => {
  const { ctx } = await world()
  store(ctx, 'probe', 1)
  storeSignedBy(ctx, 'probe', 2, generateKeyPairSync('ed25519').privateKey)
  store(ctx, 'probe', 3, true)
  ctx.pointers.probe = { active: 3, previous: 2, lastKnownGood: 1, highest: 3, trial: null }
  let fns: LoadedFunction[] = await loadAtStart(ctx)
  expect(fns.map((f) => f.info.version)).toEqual([1])
  expect(ctx.pointers.probe).toMatchObject({ active: 2, previous: 1, lastKnownGood: 1, highest: 3 })
  // A deployment then a rollback "to previous": never the damaged release.
  const d = createDeployer(ctx)
  d.attach({ functions: () => fns, swap: async (change) => { fns = await change(fns); return true } })
  await deployCommitted(d, 4, 'probe v4')
  expect(ctx.pointers.probe.previous).not.toBe(3)
})

it('a release no longer on the device is damaged: the pointers leave it', async () => {
  const { ctx } = await world()
  store(ctx, 'probe', 1)
  ctx.pointers.probe = { active: 2, previous: 1, lastKnownGood: 1, highest: 2, trial: null }
  expect((await loadAtStart(ctx)).map((f) => f.info.version)).toEqual([1])
  expect(ctx.pointers.probe).toMatchObject({ active: 1, previous: 'factory', lastKnownGood: 1, highest: 2 })
})

it('a function only the store has, whose only release is damaged: the pointers go to factory (not served, nothing retried)', async () => {
  const { ctx } = await world()
  store(ctx, 'probe', 3, true)
  ctx.pointers.probe = { active: 3, previous: 'factory', lastKnownGood: 3, highest: 3, trial: null }
  expect(await loadAtStart(ctx)).toEqual([])
  expect(ctx.pointers.probe).toMatchObject({ active: 'factory', previous: null, lastKnownGood: 'factory', highest: 3 })
  expect(await ctx.pointerFile.read()).toMatchObject({ probe: { active: 'factory' } })
})

it('active and previous damaged, last known good runs', async () => {
  const { ctx } = await world({ probe: artifactOf('probe', 'factory') })
  store(ctx, 'probe', 1)
  store(ctx, 'probe', 2, true)
  store(ctx, 'probe', 3, true)
  ctx.pointers.probe = { active: 3, previous: 2, lastKnownGood: 1, highest: 3, trial: null }
  expect((await loadAtStart(ctx)).map((f) => f.info.version)).toEqual([1])
  expect(ctx.pointers.probe).toMatchObject({ active: 1, previous: 'factory', lastKnownGood: 1 })
})

it('a store that cannot be read (EIO) at a rollback is a 503 problem that may pass, not a bare error', async () => {
  const { ctx } = await world()
  store(ctx, 'probe', 1)
  store(ctx, 'probe', 2)
  ctx.pointers.probe = { active: 2, previous: 1, lastKnownGood: 2, highest: 2, trial: null }
  let fns: LoadedFunction[] = await loadAtStart(ctx)
  const d = createDeployer(ctx)
  d.attach({ functions: () => fns, swap: async (change) => { fns = await change(fns); return true } })
  const list = ctx.store.list
  ctx.store.list = async () => { throw Object.assign(new Error("EIO: i/o error, scandir '/x/functions/probe'"), { code: 'EIO' }) }
  const e = await d.rollback('probe').catch((x: unknown) => x)
  ctx.store.list = list
  expect(e).toMatchObject({ status: 503, message: expect.stringMatching(/^probe: release 1 cannot be read \(EIO\)/) })
  expect(fns.map((f) => f.info.version)).toEqual([2])
  expect(ctx.pointers.probe).toMatchObject({ active: 2, previous: 1 })
})

it('one version, one folder: a later deployment of a version left in the store by a failed activation replaces it', async () => {
  const { ctx } = await world()
  store(ctx, 'probe', 1)
  ctx.pointers.probe = { active: 1, previous: 'factory', lastKnownGood: 1, highest: 1, trial: null }
  let fns: LoadedFunction[] = await loadAtStart(ctx)
  // Version 2 "A" was renamed into the store, then state.json could not be written (nothing changed,
  // highest stays 1): the operator deploys another version 2 ("B").
  store(ctx, 'probe', 2)
  const d = createDeployer(ctx)
  d.attach({ functions: () => fns, swap: async (change) => { fns = await change(fns); return true } })
  const artifact = await deployCommitted(d, 2, 'probe v2 B')
  expect((await ctx.store.list('probe')).filter((r) => r.version === 2)).toHaveLength(1)
  // A restart runs B, whatever the order of the folders on the disk.
  expect((await loadAtStart(ctx))[0].info.sha256).toBe(sha256Hex(artifact))
})
