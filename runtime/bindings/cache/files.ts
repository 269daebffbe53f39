// File-system helpers of the big-part cache: JSON records, listings, mkdir -p that names the real
// cause, and the listing of partial downloads (shared by eviction and the start-up clean-up).
import { mkdir, readdir, readFile, stat } from 'node:fs/promises'
import { join, sep } from 'node:path'

/** Chunk size of the cache's file streams. */
export const READ_CHUNK = 1 << 20
/** A partial download nobody has touched for this long is removed (at start and by eviction). */
export const STALE_PARTIAL_MS = 24 * 3600 * 1000

/** The parsed JSON file at `path`, or null when it is missing or unreadable. */
export async function readJsonFile<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch {
    return null
  }
}

/** The names in `dir` (none when it is missing). */
export const list = (dir: string) => readdir(dir).catch(() => [] as string[])

/** mkdir -p that reports the real cause: a recursive mkdir on a read-only volume says ENOENT, not EROFS. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    return
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  // One level at a time from the root, so the first level that cannot be made says why.
  let path = ''
  for (const part of dir.split(sep)) {
    path = path ? join(path, part) : part || sep
    await mkdir(path, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e
    })
  }
}

/** One file eviction may remove: a cached part (with its record) or a partial download (with its ETag). */
export interface Entry { path: string; side: string; bytes: number; used: number; partial: boolean }

/** Partial downloads under `partialRoot`: `<folder>/<small sha256>/<file>.big.part`. */
export async function partialEntries(partialRoot: string): Promise<Entry[]> {
  const out: Entry[] = []
  for (const folder of await list(partialRoot)) {
    for (const key of await list(join(partialRoot, folder))) {
      for (const name of await list(join(partialRoot, folder, key))) {
        if (!name.endsWith('.big.part')) continue
        const path = join(partialRoot, folder, key, name)
        const s = await stat(path).catch(() => null)
        if (s?.isFile()) out.push({ path, side: `${path}.json`, bytes: s.size, used: s.mtimeMs, partial: true })
      }
    }
  }
  return out
}
