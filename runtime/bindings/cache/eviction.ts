// The cache's bookkeeping and LRU eviction: holds per cached part, partials in use with the bytes
// still to come, one pass at a time (serialised with commits), entries that cannot go skipped.
import { rm, rmdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Logger } from '../../../shared/contract/logger'
import type { Metrics } from '../../../shared/contract/metrics'
import { list, partialEntries, STALE_PARTIAL_MS, type Entry } from './files'

/** Adds `by` to the count of `path` in `m` (removed at zero). */
export function count(m: Map<string, number>, path: string, by: number): void {
  const n = (m.get(path) ?? 0) + by
  if (n <= 0) m.delete(path)
  else m.set(path, n)
}

/** The eviction state and passes of one cache (parts under `root`, partials under `partialRoot`). */
export function createEviction(root: string, partialRoot: string, maxBytes: number, log?: Logger, metrics?: Metrics) {
  /** Holds per final path (requests reading it, a commit in progress). */
  const held = new Map<string, number>()
  /** Partial files a download is using. */
  const active = new Map<string, number>()
  /** Final size announced by reserve() per partial in use: the bytes still to come count in the total. */
  const expected = new Map<string, number>()
  /** Partial files eviction is removing: a download of the same key waits for it before it starts. */
  const removing = new Map<string, Promise<void>>()
  /** Final paths eviction has decided to remove (an acquire then misses). */
  const evicting = new Set<string>()

  // Commits and eviction run one at a time, in order.
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const p = queue.then(work, work)
    queue = p.catch(() => {})
    return p
  }

  /** Set when a pass left the cache over its bound because of holds: the next release runs another. */
  let overBound = false
  let queued: Promise<void> | null = null

  async function entries(): Promise<Entry[]> {
    const out: Entry[] = []
    for (const folder of await list(root)) {
      for (const name of await list(join(root, folder))) {
        if (!name.endsWith('.big')) continue
        const path = join(root, folder, name)
        const [s, r] = await Promise.all([stat(path).catch(() => null), stat(`${path}.json`).catch(() => null)])
        if (s?.isFile()) out.push({ path, side: `${path}.json`, bytes: s.size, used: (r ?? s).mtimeMs, partial: false })
      }
    }
    return out.concat(await partialEntries(partialRoot))
  }

  /** Bytes the downloads in progress have still to write (announced size minus bytes on disk). */
  function toCome(all: Entry[]): number {
    const onDisk = new Map(all.filter((e) => e.partial).map((e) => [e.path, e.bytes]))
    let n = 0
    for (const [path, size] of expected) n += Math.max(0, size - (onDisk.get(path) ?? 0))
    return n
  }

  /** Removes one entry; false (logged) when it cannot be removed: eviction goes on with the others. */
  async function removeEntry(e: Entry): Promise<boolean> {
    try {
      await rm(e.side, { force: true })
      await rm(e.path, { force: true })
    } catch (err) {
      log?.error({ path: e.path, code: (err as NodeJS.ErrnoException).code, err: String(err) }, 'cache eviction could not remove this entry; skipped')
      return false
    }
    if (e.partial) await rmdir(dirname(e.path)).catch(() => {})
    return true
  }

  async function evictOnce(): Promise<void> {
    const all = await entries()
    let total = all.reduce((n, e) => n + e.bytes, 0) + toCome(all)
    const now = Date.now()
    for (const e of all.sort((a, b) => a.used - b.used)) {
      const stale = e.partial && now - e.used > STALE_PARTIAL_MS
      if (total <= maxBytes && !stale) continue
      // Checked and marked in one synchronous step: an acquire (or a download of the same partial)
      // either holds first or waits/misses.
      if (e.partial ? active.has(e.path) : held.has(e.path)) continue
      let removed: boolean
      if (e.partial) {
        const removal = removeEntry(e)
        removing.set(e.path, removal.then(() => {}))
        try {
          removed = await removal
        } finally {
          removing.delete(e.path)
        }
      } else {
        evicting.add(e.path)
        try {
          removed = await removeEntry(e)
        } finally {
          evicting.delete(e.path)
        }
      }
      if (!removed) continue
      total -= e.bytes
      if (!e.partial) metrics?.cacheEvicted(e.bytes)
      log?.info({ path: e.path, bytes: e.bytes }, e.partial ? 'removed a partial download (stale or over CACHE_MAX_BYTES)' : 'evicted a cached big part (LRU)')
    }
    overBound = total > maxBytes
  }

  /** Runs an eviction pass after the commits and passes already queued (coalesced when one is waiting). */
  function evict(): Promise<void> {
    queued ??= serial(() => {
      queued = null
      return evictOnce()
    })
    return queued
  }

  /** An eviction pass whose failure (e.g. a read-only volume) is logged, never a failed commit. */
  const evictQuietly = () => evict().catch((e) => { log?.error({ err: String(e) }, 'cache eviction failed') })
  /** Another pass when the last one left the cache over its bound (a hold or a download ended). */
  const evictLater = () => {
    if (overBound) void evictQuietly()
  }

  /** What counts against the bound now: cached parts and partial downloads, and how many parts. */
  async function usage() {
    const all = await entries()
    return { bytes: all.reduce((n, e) => n + e.bytes, 0), maxBytes, entries: all.filter((e) => !e.partial).length }
  }

  return { held, active, expected, removing, evicting, serial, evict, evictQuietly, evictLater, usage }
}

/** The eviction state and passes of one cache. */
export type Eviction = ReturnType<typeof createEviction>
