// Failures of the device's own storage under CACHE_DIR (a full disk, a volume that cannot be
// written) as the 507 problems the load and upload flows answer: never a 500 (that would say the
// loader has a bug, http.md §1) and never blamed on the CDN or on the caller's body.
import { HttpError } from '../contract/http-error'

/** A device with no room left: the disk, the user's quota, the file size limit. */
const FULL = /^(ENOSPC|EDQUOT|EFBIG)$/
/** Storage the loader cannot use: read-only, no permission, an I/O error. */
const UNWRITABLE = /^(EROFS|EACCES|EPERM|EIO)$/

/**
 * The code of `e` when it is a failure of local storage (ENOSPC, EDQUOT, EFBIG, EROFS, EACCES,
 * EPERM, EIO), else undefined. For errors whose origin is unknown (a network error has a code too).
 */
export function localStorageErrorCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && (FULL.test(code) || UNWRITABLE.test(code)) ? code : undefined
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
  const code = (e as NodeJS.ErrnoException | undefined)?.code ?? 'error'
  if (FULL.test(code)) {
    return new HttpError(507, `the device's disk is full (${code}): no room for ${what}; free space under CACHE_DIR or lower CACHE_MAX_BYTES`,
      { type: 'disk-full', cause: e, extra: { code } })
  }
  // Not a bug of the loader, but storage it cannot use: 507 as well.
  return new HttpError(507, `the storage under CACHE_DIR cannot be written (${code}): ${what} failed; check that the volume is writable`,
    { type: unwritableType, cause: e, extra: { code } })
}
