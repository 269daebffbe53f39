// The `archives` binding: lists and reads the encrypted image archives under UNLOCK_ARCHIVE.
import { createReadStream } from 'node:fs'
import { open, readdir, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Archives } from '../../shared/contract/archives'

/** Creates the binding for UNLOCK_ARCHIVE (a file or a folder). */
export function createArchives(location: string): Archives {
  return {
    async list() {
      const s = await stat(location).catch(() => null)
      if (!s) throw new Error(`no archive at UNLOCK_ARCHIVE (${location})`)
      const files = s.isDirectory()
        ? (await readdir(location)).filter((n) => n.endsWith('.enc')).sort().map((n) => join(location, n))
        : [location]
      if (files.length === 0) throw new Error(`the folder UNLOCK_ARCHIVE (${location}) has no *.enc archives`)
      return Promise.all(files.map(async (path) => {
        const f = await stat(path)
        return { name: basename(path), path, size: f.size, mtimeMs: f.mtimeMs }
      }))
    },
    async tail(a, length) {
      const fh = await open(a.path, 'r')
      try {
        const buf = Buffer.alloc(Math.min(length, a.size))
        await fh.read(buf, 0, buf.length, a.size - buf.length)
        return buf
      } finally {
        await fh.close()
      }
    },
    open: (a) => createReadStream(a.path, { highWaterMark: 1 << 20 }),
  }
}
