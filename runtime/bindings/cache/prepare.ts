// Start-up clean-up of CACHE_DIR: folders made, and what a killed process left removed (temporaries,
// also beside partial downloads; partial downloads of the old layout or untouched for STALE_PARTIAL_MS,
// state writes cut short).
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Logger } from '../../../shared/contract/logger'
import { ATOMIC_TMP } from '../write-atomic'
import { list, partialEntries, STALE_PARTIAL_MS } from './files'

/**
 * Prepares CACHE_DIR and removes what a killed process left: temporaries (in tmp/ and beside the
 * cached parts), partial downloads of the old layout (keyed by name only) and partial downloads
 * untouched for STALE_PARTIAL_MS.
 */
export async function prepareCacheDir(cacheDir: string, log?: Logger): Promise<void> {
  const tmp = join(cacheDir, 'tmp')
  const partialRoot = join(tmp, 'partial')
  await mkdir(join(cacheDir, 'cache'), { recursive: true, mode: 0o700 })
  await mkdir(join(cacheDir, 'state'), { recursive: true, mode: 0o700 })
  await mkdir(partialRoot, { recursive: true, mode: 0o700 })
  for (const name of await readdir(tmp)) {
    if (name.endsWith('.tmp')) await rm(join(tmp, name), { force: true })
  }
  // Temporaries of an older staging and of writeAtomic (records) beside the cached parts, and parts
  // without their record (stopped between the rename and the record, or mid-eviction): never usable.
  for (const folder of await list(join(cacheDir, 'cache'))) {
    const names = await list(join(cacheDir, 'cache', folder))
    const present = new Set(names)
    for (const name of names) {
      const orphan = name.endsWith('.big') && !present.has(`${name}.json`)
      if (!orphan && !ATOMIC_TMP.test(name) && !/\.big\.[0-9a-f]+\.tmp$/.test(name)) continue
      // (A directory someone made there is left alone: never a reason not to start.)
      if (!await rm(join(cacheDir, 'cache', folder, name), { force: true }).then(() => true, () => false)) continue
      log?.info({ path: join(cacheDir, 'cache', folder, name) }, orphan ? 'removed a cached part without its record a stopped process left'
        : 'removed a temporary file a stopped process left')
    }
  }
  // writeAtomic's temporaries in the state store (a kill between its write and its rename).
  await removeAtomicTemps(join(cacheDir, 'state'), log)
  for (const folder of await list(partialRoot)) {
    for (const name of await list(join(partialRoot, folder))) {
      const path = join(partialRoot, folder, name)
      if (!/^[0-9a-f]{64}$/.test(name)) {
        await rm(path, { force: true, recursive: true })
        log?.info({ path }, 'removed a partial download of the old layout')
        continue
      }
      // Temporaries of writeAtomic (a partial's ETag record) a stopped process left.
      await removeAtomicTemps(path, log)
    }
  }
  const now = Date.now()
  for (const e of await partialEntries(partialRoot)) {
    if (now - e.used <= STALE_PARTIAL_MS) continue
    await rm(e.side, { force: true })
    await rm(e.path, { force: true })
    await rmdir(dirname(e.path)).catch(() => {})
    log?.info({ path: e.path, bytes: e.bytes }, 'removed a stale partial download')
  }
}

/** Removes writeAtomic's temporaries anywhere under `dir` (the state store's keys nest as folders). */
async function removeAtomicTemps(dir: string, log?: Logger): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name)
    if (e.isDirectory()) await removeAtomicTemps(path, log)
    else if (ATOMIC_TMP.test(e.name)) {
      await rm(path, { force: true })
      log?.info({ path }, 'removed a temporary file a stopped process left')
    }
  }
}
