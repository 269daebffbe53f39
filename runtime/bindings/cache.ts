// The big-part cache on disk: CACHE_DIR/cache/<folder>/<file>.big, records beside, partials in tmp.
// Holds (open descriptors) keep a part a request reads safe from eviction; commits and eviction run
// one at a time; partial downloads count against the bound and stale ones are removed.
import type { EventEmitter } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, truncate, utimes, type FileHandle } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { dirname, join, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { BigPartCache, CacheRecord, HeldPart, PartialFile, TempFile } from '../../shared/contract/cache'
import type { Logger } from '../../shared/contract/logger'
import type { Metrics } from '../../shared/contract/metrics'
import { writeAtomic } from './write-atomic'
import { hashFile } from './hash-file'

const READ_CHUNK = 1 << 20
/** A partial download nobody has touched for this long is removed (at start and by eviction). */
export const STALE_PARTIAL_MS = 24 * 3600 * 1000

async function readJsonFile<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch {
    return null
  }
}

const list = (dir: string) => readdir(dir).catch(() => [] as string[])

/** mkdir -p that reports the real cause: a recursive mkdir on a read-only volume says ENOENT, not EROFS. */
async function ensureDir(dir: string): Promise<void> {
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
interface Entry { path: string; side: string; bytes: number; used: number; partial: boolean }

/** Partial downloads under `partialRoot`: `<folder>/<small sha256>/<file>.big.part`. */
async function partialEntries(partialRoot: string): Promise<Entry[]> {
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

/** Creates the `cache` binding rooted at `cacheDir`, bounded to `maxBytes` (LRU over parts and partials). */
export function createCache(cacheDir: string, maxBytes: number, log?: Logger, metrics?: Metrics): BigPartCache {
  const root = join(cacheDir, 'cache')
  const tmp = join(cacheDir, 'tmp')
  const partialRoot = join(tmp, 'partial')
  /** Holds per final path (requests reading it, a commit in progress). */
  const held = new Map<string, number>()
  /** Partial files a download is using. */
  const active = new Map<string, number>()
  /** Final paths eviction has decided to remove (an acquire then misses). */
  const evicting = new Set<string>()
  const pathOf = (folder: string, filename: string) => join(root, folder, `${filename}.big`)
  const recordOf = (folder: string, filename: string) => `${pathOf(folder, filename)}.json`

  const count = (m: Map<string, number>, path: string, by: number) => {
    const n = (m.get(path) ?? 0) + by
    if (n <= 0) m.delete(path)
    else m.set(path, n)
  }

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

  async function evictOnce(extra: number): Promise<void> {
    const all = await entries()
    let total = all.reduce((n, e) => n + e.bytes, 0) + extra
    const now = Date.now()
    for (const e of all.sort((a, b) => a.used - b.used)) {
      const stale = e.partial && now - e.used > STALE_PARTIAL_MS
      if (total <= maxBytes && !stale) continue
      // Checked and marked in one synchronous step: an acquire either holds first or misses.
      if (e.partial ? active.has(e.path) : held.has(e.path)) continue
      if (!e.partial) evicting.add(e.path)
      try {
        await rm(e.side, { force: true })
        await rm(e.path, { force: true })
      } finally {
        evicting.delete(e.path)
      }
      total -= e.bytes
      if (e.partial) await rmdir(dirname(e.path)).catch(() => {})
      if (!e.partial) metrics?.cacheEvicted(e.bytes)
      log?.info({ path: e.path, bytes: e.bytes }, e.partial ? 'removed a partial download (stale or over CACHE_MAX_BYTES)' : 'evicted a cached big part (LRU)')
    }
    overBound = total > maxBytes
  }

  /** Runs an eviction pass after the commits and passes already queued (coalesced when one is waiting). */
  function evict(extra = 0): Promise<void> {
    if (extra > 0) return serial(() => evictOnce(extra))
    queued ??= serial(() => {
      queued = null
      return evictOnce(0)
    })
    return queued
  }

  /** An eviction pass whose failure (e.g. a read-only volume) is logged, never a failed commit. */
  const evictQuietly = () => evict().catch((e) => { log?.error({ err: String(e) }, 'cache eviction failed') })
  const evictLater = () => {
    if (overBound) void evictQuietly()
  }

  /** A hold over an open descriptor; the path's hold count was already taken by the caller. */
  function heldPart(path: string, fh: FileHandle, record: CacheRecord, bytes: number): HeldPart {
    let holds = 1
    // Each read stream of the handle listens for its close: many loads may share one download.
    ;(fh as unknown as EventEmitter).setMaxListeners(0)
    const drop = () => {
      if (--holds > 0) return
      fh.close().catch(() => {})
      count(held, path, -1)
      evictLater()
    }
    const view = (): HeldPart => {
      let released = false
      return {
        record,
        bytes,
        stream(start = 0) {
          const s = createReadStream('', { fd: fh, start, autoClose: false, highWaterMark: READ_CHUNK })
          s.on('error', (e) => log?.debug({ path, err: String(e) }, 'cached big part read failed'))
          return s
        },
        async readAt(position, length) {
          const buf = Buffer.alloc(length)
          const { bytesRead } = await fh.read(buf, 0, length, position)
          return buf.subarray(0, bytesRead)
        },
        retain() {
          if (released) throw new Error('retain() of a released cache hold')
          holds++
          return view()
        },
        release() {
          if (released) return
          released = true
          drop()
        },
      }
    }
    return view()
  }

  /** Moves `staged` to the final path and writes its record, inside the serial section. */
  async function place(folder: string, filename: string, staged: string, record: CacheRecord): Promise<void> {
    await serial(async () => {
      await rm(recordOf(folder, filename), { force: true })
      await rename(staged, pathOf(folder, filename))
      await writeAtomic(recordOf(folder, filename), JSON.stringify(record))
    })
  }

  // Bring the cache under its bound at start (CACHE_MAX_BYTES may have shrunk; partials count).
  void evictQuietly()

  return {
    root,
    pathOf,
    record: (folder, filename) => readJsonFile<CacheRecord>(recordOf(folder, filename)),

    async acquire(folder, filename) {
      const path = pathOf(folder, filename)
      for (let tries = 0; tries < 3; tries++) {
        count(held, path, 1)
        if (evicting.has(path)) {
          count(held, path, -1)
          return null
        }
        let fh: FileHandle
        try {
          fh = await open(path, 'r')
        } catch (e) {
          count(held, path, -1)
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
          throw e
        }
        try {
          // The record must describe the file we opened: a commit may replace both meanwhile.
          const record = await readJsonFile<CacheRecord>(recordOf(folder, filename))
          const [mine, now] = await Promise.all([fh.stat(), stat(path).catch(() => null)])
          if (record && now && now.ino === mine.ino && now.dev === mine.dev && record.bytes === mine.size) {
            const t = new Date()
            await utimes(recordOf(folder, filename), t, t).catch(() => {})
            return heldPart(path, fh, record, mine.size)
          }
          await fh.close()
          count(held, path, -1)
          if (!now || !record) return null
        } catch (e) {
          await fh.close().catch(() => {})
          count(held, path, -1)
          throw e
        }
      }
      return null
    },

    partial(folder, filename, smallSha256): PartialFile {
      if (!/^[0-9a-f]{64}$/.test(smallSha256)) throw new Error('partial(): smallSha256 must be a hex SHA-256')
      const path = join(partialRoot, folder, smallSha256, `${filename}.big.part`)
      const meta = `${path}.json`
      count(active, path, 1)
      let closed = false
      return {
        path,
        async state() {
          await ensureDir(dirname(path))
          const fh = await open(path, 'a', 0o600)
          await fh.close()
          const s = await stat(path)
          const m = await readJsonFile<{ etag?: string }>(meta)
          return { bytes: s.size, etag: m?.etag }
        },
        setEtag: (etag) => writeAtomic(meta, JSON.stringify({ etag })),
        async reset() {
          await ensureDir(dirname(path))
          await rm(meta, { force: true })
          await truncate(path, 0).catch(async (e) => {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
          })
        },
        reserve: (bytes) => (bytes > 0 ? evict(bytes) : Promise.resolve()),
        append: () => createWriteStream(path, { flags: 'a', mode: 0o600, highWaterMark: READ_CHUNK }),
        read: () => createReadStream(path, { highWaterMark: READ_CHUNK }),
        readRange: (start, end) => createReadStream(path, { start, end, highWaterMark: READ_CHUNK }),
        hash: () => hashFile(path),
        async commit(record) {
          const final = pathOf(folder, filename)
          await ensureDir(dirname(final))
          count(held, final, 1)
          let fh: FileHandle | undefined
          try {
            fh = await open(path, 'r')
            await place(folder, filename, path, record)
            await rm(meta, { force: true })
            await rmdir(dirname(path)).catch(() => {})
            const part = heldPart(final, fh, record, (await fh.stat()).size)
            await evictQuietly()
            return part
          } catch (e) {
            await fh?.close().catch(() => {})
            count(held, final, -1)
            throw e
          }
        },
        async remove() {
          await rm(meta, { force: true })
          await rm(path, { force: true })
          await rmdir(dirname(path)).catch(() => {})
        },
        close() {
          if (closed) return
          closed = true
          count(active, path, -1)
          evictLater()
        },
      }
    },

    async commit(folder, filename, record, fromPath, offset = 0) {
      const final = pathOf(folder, filename)
      await ensureDir(dirname(final))
      let staged = fromPath
      if (offset > 0) {
        // Copy the tail of a temporary file (upload: the blob past the small part).
        staged = `${final}.${randomBytes(4).toString('hex')}.tmp`
        try {
          await pipeline(createReadStream(fromPath, { start: offset, highWaterMark: READ_CHUNK }), createWriteStream(staged, { mode: 0o600 }))
        } catch (e) {
          await rm(staged, { force: true })
          throw e
        }
      }
      await place(folder, filename, staged, record)
      await evictQuietly()
    },

    async usage() {
      const all = await entries()
      return { bytes: all.reduce((n, e) => n + e.bytes, 0), maxBytes, entries: all.filter((e) => !e.partial).length }
    },

    temp(label): TempFile {
      const path = join(tmp, `${label}-${process.pid}-${randomBytes(6).toString('hex')}.tmp`)
      return {
        path,
        write: () => createWriteStream(path, { mode: 0o600, highWaterMark: READ_CHUNK }),
        read: (start = 0) => createReadStream(path, { start, highWaterMark: READ_CHUNK }),
        remove: () => rm(path, { force: true }),
      }
    },
  }
}

/**
 * Prepares CACHE_DIR and removes what a killed process left: temporaries, partial downloads of the
 * old layout (keyed by name only) and partial downloads untouched for STALE_PARTIAL_MS.
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
  for (const folder of await list(partialRoot)) {
    for (const name of await list(join(partialRoot, folder))) {
      const path = join(partialRoot, folder, name)
      if (!/^[0-9a-f]{64}$/.test(name)) {
        await rm(path, { force: true, recursive: true })
        log?.info({ path }, 'removed a partial download of the old layout')
      }
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
