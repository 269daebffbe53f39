// What a failed local write (the upload's temporary file) means for the caller: 507 when the
// device has no room, or cannot write at all (read-only, no permission, I/O error), naming the cause;
// never "body ended early". Not a 500: that would say the loader has a bug (http.md §1).
import { HttpError } from '../../shared/contract/http-error'

/** Codes of a device that has no room left (disk or quota). */
const FULL = /^(ENOSPC|EDQUOT|EFBIG)$/

/** True when `e` is an error of the local file system (it carries an errno code and a syscall). */
export const isLocalFsError = (e: unknown): e is NodeJS.ErrnoException =>
  typeof (e as NodeJS.ErrnoException)?.code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string'

/**
 * The problem for a local file error while storing `what`: 507 for a full disk or quota, and
 * 507 too for a device that cannot write (EACCES, EROFS, EIO, …), each naming the code.
 */
export function localWriteProblem(e: NodeJS.ErrnoException, what: string): HttpError {
  const code = e.code ?? 'error'
  if (FULL.test(code)) {
    return new HttpError(507, `the device has no room left for ${what} (${code}): free space under CACHE_DIR`, { type: 'disk-full', cause: e, extra: { code } })
  }
  return new HttpError(507, `the device cannot write ${what} under CACHE_DIR (${code}): check that it is writable`, { type: 'local-storage', cause: e, extra: { code } })
}
