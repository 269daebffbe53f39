// The resumable partial download of one version of a big part (`tmp/partial/<folder>/<small
// sha256>/<file>.big.part`): in use it is never evicted, its announced size counts against the
// bound, and a download that starts while eviction removes it waits for the removal.
import { hashFile } from '../hash-file'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, rm, rmdir, stat, truncate, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { CacheRecord, HeldPart, PartialFile } from '../../../shared/contract/cache'
import { writeAtomic } from '../write-atomic'
import { count, type Eviction } from './eviction'
import { ensureDir, READ_CHUNK, readJsonFile } from './files'

/** What a partial file needs of its cache. */
export interface PartialDeps {
  ev: Eviction
  partialRoot: string
  pathOf(folder: string, filename: string): string
  /** Moves `staged` to the final path with its record (serialised with eviction). */
  place(folder: string, filename: string, staged: string, record: CacheRecord): Promise<void>
  /** Holds the part at `final` over `fh` (its hold count already taken). */
  hold(final: string, fh: FileHandle, record: CacheRecord, bytes: number): HeldPart
}

/** The partial download of `folder/filename` for the small part `smallSha256`, claimed until close(). */
export function createPartialFile(deps: PartialDeps, folder: string, filename: string, smallSha256: string): PartialFile {
  const { ev, pathOf } = deps
  if (!/^[0-9a-f]{64}$/.test(smallSha256)) throw new Error('partial(): smallSha256 must be a hex SHA-256')
  const path = join(deps.partialRoot, folder, smallSha256, `${filename}.big.part`)
  const meta = `${path}.json`
  count(ev.active, path, 1)
  let closed = false
  /** Creates the file (and its folders) when missing; retried when a removal of a sibling's folder races it. */
  const create = async () => {
    await ev.removing.get(path)
    for (let tries = 0; ; tries++) {
      try {
        await ensureDir(dirname(path))
        await (await open(path, 'a', 0o600)).close()
        return
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || tries >= 3) throw e
      }
    }
  }
  return {
    path,
    async state() {
      await create()
      const s = await stat(path)
      const m = await readJsonFile<{ etag?: string }>(meta)
      return { bytes: s.size, etag: m?.etag }
    },
    setEtag: (etag) => writeAtomic(meta, JSON.stringify({ etag })),
    async reset() {
      await create()
      await rm(meta, { force: true })
      await truncate(path, 0)
    },
    async reserve(bytes) {
      if (bytes <= 0) return
      // The partial's final size: what is on disk plus what the CDN announced it still sends.
      const s = await stat(path).catch(() => null)
      if (closed) return
      ev.expected.set(path, (s?.size ?? 0) + bytes)
      await ev.evict()
    },
    append: () => createWriteStream(path, { flags: 'a', mode: 0o600, highWaterMark: READ_CHUNK }),
    read: () => createReadStream(path, { highWaterMark: READ_CHUNK }),
    readRange: (start, end) => createReadStream(path, { start, end, highWaterMark: READ_CHUNK }),
    hash: () => hashFile(path),
    async commit(record) {
      const final = pathOf(folder, filename)
      await ensureDir(dirname(final))
      count(ev.held, final, 1)
      let fh: FileHandle | undefined
      try {
        fh = await open(path, 'r')
        await deps.place(folder, filename, path, record)
        ev.expected.delete(path)
        await rm(meta, { force: true })
        await rmdir(dirname(path)).catch(() => {})
        const part = deps.hold(final, fh, record, (await fh.stat()).size)
        await ev.evictQuietly()
        return part
      } catch (e) {
        await fh?.close().catch(() => {})
        count(ev.held, final, -1)
        throw e
      }
    },
    async remove() {
      ev.expected.delete(path)
      await rm(meta, { force: true })
      await rm(path, { force: true })
      await rmdir(dirname(path)).catch(() => {})
    },
    close() {
      if (closed) return
      closed = true
      count(ev.active, path, -1)
      if (!ev.active.has(path)) ev.expected.delete(path)
      ev.evictLater()
    },
  }
}
