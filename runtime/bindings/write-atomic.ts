// Writes a small file atomically: a temporary file beside it, renamed over it, so a reader or a
// crash never sees half a file (cache records, the `state` storage).
import { randomBytes } from 'node:crypto'
import { rename, rm, writeFile } from 'node:fs/promises'

/** The names of writeAtomic's temporary files (`<path>.<8 hex>.tmp`), for listings that skip them. */
export const ATOMIC_TMP = /\.[0-9a-f]{8}\.tmp$/

/** Writes `data` to `path` (mode 0600) through a temporary file and a rename; the temporary is removed on failure. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data, { mode: 0o600 })
    await rename(tmp, path)
  } catch (e) {
    await rm(tmp, { force: true })
    throw e
  }
}
