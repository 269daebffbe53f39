// Failures of the device's own storage under CACHE_DIR (a full disk, a volume that cannot be
// written) as the 507 problems the load and upload flows answer: never a 500 (that would say the
// loader has a bug, http.md §1) and never blamed on the CDN or on the caller's body.
import { HttpError, isHttpError } from '../contract/http-error'

/** A device with no room left: the disk, the user's quota. */
const FULL = /^(ENOSPC|EDQUOT)$/
/** Storage the loader cannot write: read-only, no permission. */
const UNWRITABLE = /^(EROFS|EACCES|EPERM)$/
/** Failures only local storage raises, whatever the stream (a network error never has these codes). */
const LOCAL_ONLY = /^(ENOSPC|EDQUOT|EFBIG|EROFS|EACCES|EPERM|EIO)$/
/** Set on an error known to come from one of the loader's own files (works across bundles). */
const LOCAL = Symbol.for('loader.local-file-error')

/** Marks `e` as raised by one of the loader's own files, so that whatever its code it maps to 507; returns it. */
export function markLocal<T>(e: T): T {
  // A problem already decided (an HttpError) keeps its meaning.
  if (e !== null && typeof e === 'object' && !isHttpError(e)) (e as Record<symbol, unknown>)[LOCAL] = true
  return e
}

/** Runs `op` on local files: what it throws is marked as a local failure (markLocal). */
export async function onLocalFile<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (e) {
    throw markLocal(e)
  }
}

/**
 * The code of `e` when it is a failure of local storage, else undefined: an error marked as a local
 * file's (any code: EMFILE, ENOENT …), or one with a code only storage raises (ENOSPC, EDQUOT, EFBIG,
 * EROFS, EACCES, EPERM, EIO) whatever its origin.
 */
export function localStorageErrorCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  if (e !== null && typeof e === 'object' && (e as Record<symbol, unknown>)[LOCAL]) return typeof code === 'string' ? code : 'EIO'
  return typeof code === 'string' && LOCAL_ONLY.test(code) ? code : undefined
}

/**
 * The storage code of a download's failure (localStorageErrorCode), where every upstream error
 * already arrives as an HttpError: a raw errno error left over can only be a local file's.
 */
export function downloadStorageCode(e: unknown): string | undefined {
  if (!isHttpError(e) && isLocalFsError(e)) markLocal(e)
  return localStorageErrorCode(e)
}

/** True when `e` is an error of the local file system (an errno code and a syscall): for a stream known to be a local file. */
export const isLocalFsError = (e: unknown): e is NodeJS.ErrnoException =>
  typeof (e as NodeJS.ErrnoException)?.code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string'

/**
 * The 507 problem for the local storage failure `e` while storing `what` (a noun phrase, e.g. "the
 * upload"): `disk-full` for a device with no room, else `unwritableType` (each flow names its own:
 * `cache-not-writable`, `local-storage`). The detail and the `code` member name the error code.
 */
export function localStorageProblem(e: unknown, what: string, unwritableType: string): HttpError {
  const code = localStorageErrorCode(e) ?? (e as NodeJS.ErrnoException | undefined)?.code ?? 'EIO'
  if (FULL.test(code)) {
    return new HttpError(507, `the device's disk is full (${code}): no room for ${what}; free space under CACHE_DIR or lower CACHE_MAX_BYTES`,
      { type: 'disk-full', cause: e, extra: { code } })
  }
  if (code === 'EFBIG') {
    return new HttpError(507, `the device's file system takes no file this large (${code}): ${what} failed; put CACHE_DIR on a file system without a small file size limit (not FAT32)`,
      { type: 'disk-full', cause: e, extra: { code } })
  }
  // Not a bug of the loader, but storage it cannot use: 507 as well.
  const detail = UNWRITABLE.test(code)
    ? `the storage under CACHE_DIR cannot be written (${code}): ${what} failed; check that the volume is writable`
    : `the storage under CACHE_DIR cannot be used (${code}): ${what} failed; check the volume, its mount and the open-file limit`
  return new HttpError(507, detail, { type: unwritableType, cause: e, extra: { code } })
}
