// Reads dist/manifest.json and imports each function artifact after checking its sha256.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FunctionInfo, LoaderFunction, RouteDef } from '../shared/contract/function'

/** A function module with what `/status` says of it. */
export interface LoadedFunction {
  mod: LoaderFunction
  info: FunctionInfo
}

/** One manifest entry, as build.mjs writes it. */
export interface ManifestEntry {
  name: string
  file: string
  sha256: string
  bytes: number
  routes: RouteDef[]
}

/** The manifest build.mjs writes. */
export interface Manifest {
  version: string
  builtAt: string
  functions: ManifestEntry[]
}

/** Reads and minimally checks the manifest in `dir`. */
export async function readManifest(dir: string): Promise<Manifest> {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest
  if (!Array.isArray(m.functions)) throw new Error(`${dir}/manifest.json has no functions list`)
  return m
}

/**
 * Loads every function of the manifest, reusing `previous` modules whose sha256 did not
 * change. An artifact whose bytes do not match its manifest entry is an error (a half
 * written redeploy): the caller keeps the functions it had.
 */
export async function loadFunctions(dir: string, previous: LoadedFunction[] = []): Promise<LoadedFunction[]> {
  const manifest = await readManifest(dir)
  const out: LoadedFunction[] = []
  for (const entry of manifest.functions) {
    const same = previous.find((p) => p.info.name === entry.name && p.info.sha256 === entry.sha256)
    if (same) {
      out.push(same)
      continue
    }
    const file = resolve(dir, entry.file)
    const bytes = await readFile(file)
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    if (sha256 !== entry.sha256) throw new Error(`${entry.file}: sha256 ${sha256} does not match the manifest`)
    const mod = await importArtifact(file, sha256, entry.name)
    out.push({ mod, info: { name: entry.name, sha256, bytes: entry.bytes, loadedAt: new Date().toISOString(), routes: mod.routes } })
  }
  return out
}

// Node caches a module by URL, a failed evaluation too: a URL whose import failed is never
// asked again, the next attempt gets a fresh one, so a transient failure is not kept for good.
const failedImports = new Map<string, number>()

/**
 * Imports the artifact at `file` (whose bytes hash to `sha256`) and checks that its default export
 * is the function `name`. Unchanged bytes reuse the module already imported; a failed attempt is
 * not cached.
 */
export async function importArtifact(file: string, sha256: string, name: string): Promise<LoaderFunction> {
  const base = `${pathToFileURL(file).href}?sha256=${sha256}`
  const failures = failedImports.get(base) ?? 0
  const url = failures ? `${base}&attempt=${failures}` : base
  let mod: LoaderFunction
  try {
    mod = (await import(url)).default as LoaderFunction
  } catch (e) {
    failedImports.set(base, failures + 1)
    throw e
  }
  if (!mod || typeof mod.fetch !== 'function' || mod.name !== name || !Array.isArray(mod.routes)) {
    throw new Error(`${file}: default export is not the function ${name}`)
  }
  return mod
}
