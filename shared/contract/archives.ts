// The `archives` binding's interface: the encrypted image archives under UNLOCK_ARCHIVE.
import type { Readable } from 'node:stream'

/** One encrypted archive on disk. */
export interface ArchiveFile {
  name: string
  path: string
  size: number
  mtimeMs: number
}

/** File access the unlock function needs, given through `env`. */
export interface Archives {
  /** The archive file, or the `*.enc` files of the folder in name order; throws with a clear message. */
  list(): Promise<ArchiveFile[]>
  /** The last `length` bytes of an archive. */
  tail(a: ArchiveFile, length: number): Promise<Buffer>
  open(a: ArchiveFile): Readable
}
