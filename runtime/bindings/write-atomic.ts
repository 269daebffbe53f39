// Writes a small file atomically and durably: a temporary file beside it, flushed to the disk,
// renamed over it, then the folder flushed, so neither a reader, a crash nor a power cut ever
// sees half a file or an empty one (cache records, the `state` storage, the release pointers).
import { randomBytes } from 'node:crypto'
import { open, rename, rm, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'

/** The names of writeAtomic's temporary files (`<path>.<8 hex>.tmp`), for listings that skip them. */
export const ATOMIC_TMP = /\.[0-9a-f]{8}\.tmp$/

/** What a file system that cannot flush answers (VirtualBox shared folders, some FUSE mounts): not a failure of the write. */
const NO_FLUSH = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'])

/** `fh.datasync()`, except where the file system has no flush at all: there the write stands unflushed. EIO, ENOSPC … still fail. */
async function flush(fh: FileHandle): Promise<void> {
  try {
    await fh.datasync()
  } catch (e) {
    if (!NO_FLUSH.has((e as NodeJS.ErrnoException).code ?? '')) throw e
  }
}

/** Flushes the folder's entry list, so a rename survives a power cut; best effort (some file systems refuse). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined)
  if (!fh) return
  try {
    await fh.sync()
  } catch {
    // EINVAL on file systems without directory sync: the rename stands, only its durability is not promised.
  } finally {
    await fh.close()
  }
}

/** Flushes the data of the file at `path` to the disk (before it is renamed into place). */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await flush(fh)
  } finally {
    await fh.close()
  }
}

/** Writes `data` to `path` (mode 0600) through a flushed temporary file and a rename; the temporary is removed on failure. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(data)
      // Without it a power cut after the rename can leave the new name with no data (delayed allocation).
      await flush(fh)
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  } catch (e) {
    await rm(tmp, { force: true })
    throw e
  }
  await syncDir(dirname(path))
}
