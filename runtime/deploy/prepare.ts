// Activation step 1 (deploy.md §4): import a staged release and run its optional selfTest(env)
// with a time limit; any failure is a Refused that rejects the deployment.
import { join } from 'node:path'
import type { Env } from '../../shared/contract/function'
import { importArtifact, type LoadedFunction } from '../registry'
import { Refused, type Release, sameRoutes } from './release'
import { artifactFile } from './store'

/** How long a release's import, and then its selfTest, may take (each). */
export const SELF_TEST_MS = 10_000

/** Imports the release staged in `dir`, checks its routes against the signed ones and runs its selfTest. */
export async function prepareRelease(env: Env, dir: string, r: Release): Promise<LoadedFunction> {
  const name = r.function
  let mod
  try {
    mod = await importArtifact(join(dir, artifactFile(name)), r.sha256, name, SELF_TEST_MS)
  } catch (e) {
    throw new Refused(`${name}: the artifact failed to import: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (!sameRoutes(mod.routes, r.routes)) throw new Refused(`${name}: the artifact's routes are not the signed ones`)
  if (mod.selfTest) {
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([mod.selfTest(env), new Promise((_, fail) => {
        timer = setTimeout(() => fail(new Error(`no answer in ${SELF_TEST_MS} ms`)), SELF_TEST_MS)
      })])
    } catch (e) {
      throw new Refused(`${name}: selfTest failed: ${e instanceof Error ? e.message : String(e)}`)
    } finally {
      clearTimeout(timer)
    }
  }
  return { mod, info: { name, sha256: r.sha256, bytes: r.bytes, loadedAt: new Date().toISOString(), routes: mod.routes, version: r.version, source: 'store', trial: true } }
}
