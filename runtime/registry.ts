// Reads dist/manifest.json and imports a function artifact after its sha256 check.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
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

// Node caches a module by URL, a failed evaluation too: a URL whose import failed is never
// asked again, the next attempt gets a fresh one, so a transient failure is not kept for good.
const failedImports = new Map<string, number>()

/**
 * Imports the artifact at `file` (whose bytes hash to `sha256`) and checks that its default export
 * is the function `name`. Unchanged bytes reuse the module already imported; a failed attempt is
 * not cached. With `limitMs`, an import that has not settled by then fails (its module stays
 * pending in memory and is never asked again). A synchronous endless loop at import cannot be
 * bounded this way: it blocks the one thread the timer would need (only a worker or a child
 * process could; the loader does not sandbox functions, the release signature is the trust).
 */
export async function importArtifact(file: string, sha256: string, name: string, limitMs?: number): Promise<LoaderFunction> {
  const base = `${pathToFileURL(file).href}?sha256=${sha256}`
  const failures = failedImports.get(base) ?? 0
  const url = failures ? `${base}&attempt=${failures}` : base
  let mod: LoaderFunction
  let timer: NodeJS.Timeout | undefined
  try {
    const imported = import(url) as Promise<{ default: LoaderFunction }>
    mod = (limitMs === undefined ? await imported : await Promise.race([imported, new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`the import did not settle in ${limitMs} ms`)), limitMs)
    })])).default
  } catch (e) {
    failedImports.set(base, failures + 1)
    throw e
  } finally {
    clearTimeout(timer)
  }
  if (!mod || typeof mod.fetch !== 'function' || mod.name !== name || !Array.isArray(mod.routes)) {
    throw new Error(`${file}: default export is not the function ${name}`)
  }
  return mod
}
