// Local write failures while caching a big part: 507, naming the code (a full disk or an unwritable cache).
import { HttpError } from '../../shared/contract/http-error'

const isFull = (code: string) => code === 'ENOSPC' || code === 'EDQUOT'
const isUnwritable = (code: string) => code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || code === 'EIO'

/** The error code of `e` when it is a local storage failure (ENOSPC, EDQUOT, EROFS, EACCES, EPERM, EIO). */
export function diskErrorCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return code && (isFull(code) || isUnwritable(code)) ? code : undefined
}

/** The problem a caller sees for a local storage failure `code` while caching `what`. */
export function diskProblem(code: string, what: string, cause: unknown): HttpError {
  if (isFull(code)) {
    return new HttpError(507, `the device's disk is full (${code}): the ${what} cannot be cached; free space or lower CACHE_MAX_BYTES`, { type: 'disk-full', cause })
  }
  // Not a bug of the loader (a 500 would say so), but storage it cannot use: 507 as well.
  return new HttpError(507, `the cache under CACHE_DIR cannot be written (${code}): the ${what} cannot be cached; check the volume`, { type: 'cache-not-writable', cause })
}
