// The big-part cache on disk: CACHE_DIR/cache/<folder>/<file>.big, records beside, partials in tmp.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import type { BigPartCache, CacheRecord, PartialDownload, TempFile } from '../../shared/contract/cache'
import type { Logger } from '../../shared/contract/logger'
import { writeAtomic } from './write-atomic'
import { hashFile } from './hash-file'

const READ_CHUNK = 1 << 20

async function readJsonFile<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch {
    return null
  }
}

/** Creates the `cache` binding rooted at `cacheDir`, bounded to `maxBytes` (LRU). */
export function createCache(cacheDir: string, maxBytes: number, log?: Logger): BigPartCache {
  const root = join(cacheDir, 'cache')
  const tmp = join(cacheDir, 'tmp')
  const readers = new Map<string, number>()
  const pathOf = (folder: string, filename: string) => join(root, folder, `${filename}.big`)
  const recordOf = (folder: string, filename: string) => `${pathOf(folder, filename)}.json`
  const partOf = (folder: string, filename: string) => join(tmp, 'partial', folder, `${filename}.big.part`)

  const hold = (path: string) => readers.set(path, (readers.get(path) ?? 0) + 1)
  const release = (path: string) => {
    const n = (readers.get(path) ?? 1) - 1
    if (n <= 0) readers.delete(path)
    else readers.set(path, n)
  }

  async function entries(): Promise<{ path: string; bytes: number; used: number }[]> {
    const out: { path: string; bytes: number; used: number }[] = []
    for (const folder of await readdir(root).catch(() => [] as string[])) {
      for (const name of await readdir(join(root, folder)).catch(() => [] as string[])) {
        if (!name.endsWith('.big')) continue
        const path = join(root, folder, name)
        const [s, r] = await Promise.all([stat(path).catch(() => null), stat(`${path}.json`).catch(() => null)])
        if (s) out.push({ path, bytes: s.size, used: (r ?? s).mtimeMs })
      }
    }
    return out
  }

  async function evict(): Promise<void> {
    const all = await entries()
    let total = all.reduce((n, e) => n + e.bytes, 0)
    for (const e of all.sort((a, b) => a.used - b.used)) {
      if (total <= maxBytes) break
      if (readers.has(e.path)) continue
      await rm(`${e.path}.json`, { force: true })
      await rm(e.path, { force: true })
      total -= e.bytes
      log?.info({ path: e.path, bytes: e.bytes }, 'evicted a cached big part (LRU)')
    }
  }

  return {
    root,
    pathOf,
    record: (folder, filename) => readJsonFile<CacheRecord>(recordOf(folder, filename)),

    async open(folder, filename, start = 0) {
      const path = pathOf(folder, filename)
      const s = await stat(path).catch(() => null)
      if (!s) return null
      hold(path)
      const now = new Date()
      await utimes(recordOf(folder, filename), now, now).catch(() => {})
      const stream = createReadStream(path, { start, highWaterMark: READ_CHUNK })
      stream.once('close', () => release(path))
      return { stream, bytes: s.size }
    },

    async readAt(folder, filename, position, length) {
      const fh = await open(pathOf(folder, filename), 'r')
      try {
        const buf = Buffer.alloc(length)
        const { bytesRead } = await fh.read(buf, 0, length, position)
        return buf.subarray(0, bytesRead)
      } finally {
        await fh.close()
      }
    },

    async partial(folder, filename): Promise<PartialDownload> {
      const path = partOf(folder, filename)
      await mkdir(dirname(path), { recursive: true })
      const fh = await open(path, 'a')
      await fh.close()
      const s = await stat(path)
      const meta = await readJsonFile<{ etag?: string }>(`${path}.json`)
      return { path, etag: meta?.etag, bytes: s.size }
    },

    async setPartialEtag(folder, filename, etag) {
      await writeAtomic(`${partOf(folder, filename)}.json`, JSON.stringify({ etag }))
    },

    async resetPartial(folder, filename) {
      const path = partOf(folder, filename)
      await writeFile(path, '')
      await rm(`${path}.json`, { force: true })
    },

    async commit(folder, filename, record, fromPath, offset = 0) {
      const final = pathOf(folder, filename)
      await mkdir(dirname(final), { recursive: true })
      const source = fromPath ?? partOf(folder, filename)
      let staged = source
      if (offset > 0) {
        // Copy the tail of a temporary file (upload: the blob past the small part).
        staged = `${final}.${randomBytes(4).toString('hex')}.tmp`
        const { pipeline } = await import('node:stream/promises')
        const { createWriteStream } = await import('node:fs')
        await pipeline(createReadStream(source, { start: offset, highWaterMark: READ_CHUNK }), createWriteStream(staged, { mode: 0o600 }))
      }
      await rm(recordOf(folder, filename), { force: true })
      await rename(staged, final)
      await writeAtomic(recordOf(folder, filename), JSON.stringify(record))
      if (!fromPath) await rm(`${source}.json`, { force: true })
      await evict()
    },


    appendPartial: (folder, filename) => createWriteStream(partOf(folder, filename), { flags: 'a', mode: 0o600, highWaterMark: READ_CHUNK }),
    readPartial: (folder, filename, start, end) => createReadStream(partOf(folder, filename), { start, end, highWaterMark: READ_CHUNK }),

    hashPartial: (folder, filename) => hashFile(partOf(folder, filename)),

    async usage() {
      const all = await entries()
      return { bytes: all.reduce((n, e) => n + e.bytes, 0), maxBytes, entries: all.length }
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

/** Prepares CACHE_DIR and removes temporaries a killed process left (not resumable partials). */
export async function prepareCacheDir(cacheDir: string): Promise<void> {
  const tmp = join(cacheDir, 'tmp')
  await mkdir(join(cacheDir, 'cache'), { recursive: true, mode: 0o700 })
  await mkdir(join(cacheDir, 'state'), { recursive: true, mode: 0o700 })
  await mkdir(join(tmp, 'partial'), { recursive: true, mode: 0o700 })
  for (const name of await readdir(tmp)) {
    if (name.endsWith('.tmp')) await rm(join(tmp, name), { force: true })
  }
}
