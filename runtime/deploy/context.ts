// What the device side of field deployment shares: config, keys, store, pointers, journal, factory set.
import { readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Env } from '../../shared/contract/function'
import { importArtifact, readManifest, type LoadedFunction, type Manifest } from '../registry'
import { createJournal, type Journal } from './journal'
import { bestEffort } from './best-effort'
import { createPointerFile, factoryPointer, type Pointer, type PointerFile, type Pointers, type Ref } from './pointer'
import { Damaged, Refused, sameRoutes } from './release'
import { checkRoutePaths } from './route-paths'
import { artifactFile, createStore, type Store } from './store'
import { sha256Hex, verifyRelease, type ReleaseKey } from './verify'

/** The shared pieces; `pointers` is the in-memory copy of state.json (written through `pointerFile`). */
export interface DeployContext {
  env: Env
  /** RELEASE_KEYS; empty: deploys are off and only the factory set runs. */
  keys: ReleaseKey[]
  factoryDir: string
  store: Store
  pointerFile: PointerFile
  pointers: Pointers
  journal: Journal
}

/** Opens the store, the pointer file and the journal under CACHE_DIR. */
export async function createContext(env: Env, keys: ReleaseKey[], factoryDir: string): Promise<DeployContext> {
  const store = createStore(resolve(env.config.CACHE_DIR))
  await bestEffort(env, 'preparing the release store', () => store.init())
  const pointerFile = createPointerFile(store.root)
  const journal = createJournal(store.root)
  let pointers: Pointers = {}
  if (keys.length) {
    try {
      pointers = await pointerFile.read()
    } catch (e) {
      // Written atomically, so only a damaged disk or a hand edit gets here: the factory set runs, and
      // the versions in the store keep the anti-downgrade floor.
      const reason = `${pointerFile.path} is unreadable (${e instanceof Error ? e.message : String(e)}): the factory set runs`
      env.log.warn(reason)
      env.warnings.push(reason)
      await bestEffort(env, 'the journal append', () => journal.append({ event: 'fallback_at_start', reason }))
      const names = await readdir(store.root, { withFileTypes: true }).then((d) => d.filter((x) => x.isDirectory()).map((x) => x.name), () => [])
      for (const name of names) {
        const versions = (await store.list(name).catch(() => [])).map((r) => r.version)
        if (versions.length) pointers[name] = { ...factoryPointer(), highest: Math.max(...versions) }
      }
    }
  }
  return { env, keys, factoryDir: resolve(factoryDir), store, pointerFile, pointers, journal }
}

/** How long one candidate's import may take at start or on a rollback before the next one is tried. */
export const IMPORT_MS = 10_000

/** A function's pointers, the factory ones when nothing was deployed to it. */
export const pointerOf = (ctx: DeployContext, name: string): Pointer =>
  (Object.hasOwn(ctx.pointers, name) ? ctx.pointers[name] : undefined) ?? factoryPointer()

/** Imports the factory artifact of `name` after its sha256 check. */
export async function loadFactory(ctx: DeployContext, name: string, manifest?: Manifest): Promise<LoadedFunction> {
  const m = manifest ?? await readManifest(ctx.factoryDir)
  const entry = m.functions.find((f) => f.name === name)
  if (!entry) throw new Refused(`${name}: the factory set has no such function`)
  const file = resolve(ctx.factoryDir, entry.file)
  const bytes = await readFile(file)
  const sha256 = sha256Hex(bytes)
  if (sha256 !== entry.sha256) throw new Refused(`${name}: the factory artifact's sha256 ${sha256} does not match its manifest`)
  const mod = await importArtifact(file, sha256, name, IMPORT_MS)
  return { mod, info: { name, sha256, bytes: bytes.length, loadedAt: new Date().toISOString(), routes: mod.routes, version: 'factory', source: 'factory' } }
}

/** Verifies a stored release of `name` (signature, name, hash, size, contract) and imports it. */
export async function loadStored(ctx: DeployContext, name: string, version: number): Promise<LoadedFunction> {
  // A store that cannot be read (EIO, EACCES) is a 503 that may pass, not a damaged release.
  const unreadable = (e: NodeJS.ErrnoException) => new Refused(`${name}: release ${version} cannot be read (${e.code ?? e.message})`, 503)
  const dir = await ctx.store.find(name, version).catch((e: NodeJS.ErrnoException) => { throw unreadable(e) })
  if (!dir) throw new Damaged(`${name}: release ${version} is not on the device`)
  const files = await ctx.store.read(name, dir).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' ? new Damaged(`${name}: release ${version} lacks a file (${e.message})`) : unreadable(e)
  })
  const r = verifyRelease(files, ctx.keys, name)
  if (r.version !== version) throw new Refused(`${name}: the folder of release ${version} holds release ${r.version}`)
  const mod = await importArtifact(join(dir, artifactFile(name)), r.sha256, name, IMPORT_MS)
  if (!sameRoutes(mod.routes, r.routes)) throw new Refused(`${name}: the artifact's routes are not the signed ones`)
  checkRoutePaths(name, mod.routes)
  return { mod, info: { name, sha256: r.sha256, bytes: r.bytes, loadedAt: new Date().toISOString(), routes: mod.routes, version, source: 'store' } }
}

/** Loads a release or the factory artifact. */
export const loadRef = (ctx: DeployContext, name: string, ref: Ref, manifest?: Manifest) =>
  ref === 'factory' ? loadFactory(ctx, name, manifest) : loadStored(ctx, name, ref)

/** Writes the in-memory pointers to state.json. */
export const savePointers = (ctx: DeployContext) => ctx.pointerFile.write(ctx.pointers)
