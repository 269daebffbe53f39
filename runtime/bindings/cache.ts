// The big-part cache on disk: CACHE_DIR/cache/<folder>/<file>.big, records beside, partials in tmp.
// Holds (open descriptors) keep a part a request reads safe from eviction; commits and eviction run
// one at a time; partial downloads count against the bound and stale ones are removed. The parts
// are in cache/: holds, eviction, partial-file, prepare (start-up clean-up), files (helpers).
import { createReadStream, createWriteStream } from 'node:fs'
import { open, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { BigPartCache, CacheRecord, HeldPart, TempFile } from '../../shared/contract/cache'
import type { Logger } from '../../shared/contract/logger'
import type { Metrics } from '../../shared/contract/metrics'
import { syncFile, writeAtomic } from './write-atomic'
import { count, createEviction } from './cache/eviction'
import { createDiscard } from './cache/discard'
import { ensureDir, READ_CHUNK, readJsonFile } from './cache/files'
import { heldPart } from './cache/holds'
import { createPartialFile } from './cache/partial-file'

export { STALE_PARTIAL_MS } from './cache/files'
export { prepareCacheDir } from './cache/prepare'

/** Creates the `cache` binding rooted at `cacheDir`, bounded to `maxBytes` (LRU over parts and partials). */
export function createCache(cacheDir: string, maxBytes: number, log?: Logger, metrics?: Metrics): BigPartCache {
  const root = join(cacheDir, 'cache')
  const tmp = join(cacheDir, 'tmp')
  const partialRoot = join(tmp, 'partial')
  const ev = createEviction(root, partialRoot, maxBytes, log, metrics)
  const pathOf = (folder: string, filename: string) => join(root, folder, `${filename}.big`)
  const recordOf = (folder: string, filename: string) => `${pathOf(folder, filename)}.json`

  const discard = createDiscard(ev, log)

  /** A hold over an open descriptor; the path's hold count was already taken by the caller. */
  const hold = (path: string, fh: FileHandle, record: CacheRecord, bytes: number): HeldPart =>
    heldPart(path, fh, record, bytes, () => {
      count(ev.held, path, -1)
      ev.evictLater()
    }, (held) => discard(path, held, record), log)

  /** Moves `staged` to the final path and writes its record, inside the serial section. */
  async function place(folder: string, filename: string, staged: string, record: CacheRecord): Promise<void> {
    // Its data on the disk before its name: after a power cut a part under its final name is whole
    // (a warm load checks only the padding, so a torn part could decrypt to wrong bytes).
    await syncFile(staged)
    await ev.serial(async () => {
      await rm(recordOf(folder, filename), { force: true })
      await rename(staged, pathOf(folder, filename))
      try {
        await writeAtomic(recordOf(folder, filename), JSON.stringify(record))
      } catch (e) {
        // No record (a full disk): a part nobody can use must not keep its space under the final name.
        await rm(pathOf(folder, filename), { force: true }).catch(() => {})
        throw e
      }
    })
  }

  // Bring the cache under its bound at start (CACHE_MAX_BYTES may have shrunk; partials count).
  void ev.evictQuietly()

  return {
    root,
    pathOf,
    record: (folder, filename) => readJsonFile<CacheRecord>(recordOf(folder, filename)),

    async acquire(folder, filename) {
      const path = pathOf(folder, filename)
      for (let tries = 0; tries < 3; tries++) {
        count(ev.held, path, 1)
        if (ev.evicting.has(path)) {
          count(ev.held, path, -1)
          return null
        }
        let fh: FileHandle
        try {
          fh = await open(path, 'r')
        } catch (e) {
          count(ev.held, path, -1)
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
            return hold(path, fh, record, mine.size)
          }
          await fh.close()
          count(ev.held, path, -1)
          if (!now || !record) return null
        } catch (e) {
          await fh.close().catch(() => {})
          count(ev.held, path, -1)
          throw e
        }
      }
      return null
    },

    partial: (folder, filename, smallSha256) => createPartialFile({ ev, partialRoot, pathOf, place, hold }, folder, filename, smallSha256),

    async commit(folder, filename, record, fromPath, offset = 0) {
      const final = pathOf(folder, filename)
      await ensureDir(dirname(final))
      let staged = fromPath
      if (offset > 0) {
        // Copy the tail of a temporary file (upload: the blob past the small part). Staged in tmp/
        // (same volume, so the rename is atomic), where a killed process's leftovers are removed at start.
        staged = join(tmp, `staged-${process.pid}-${randomBytes(6).toString('hex')}.tmp`)
        try {
          await pipeline(createReadStream(fromPath, { start: offset, highWaterMark: READ_CHUNK }), createWriteStream(staged, { mode: 0o600 }))
        } catch (e) {
          await rm(staged, { force: true })
          throw e
        }
      }
      try {
        await place(folder, filename, staged, record)
      } catch (e) {
        if (staged !== fromPath) await rm(staged, { force: true })
        throw e
      }
      await ev.evictQuietly()
    },

    usage: () => ev.usage(),

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
