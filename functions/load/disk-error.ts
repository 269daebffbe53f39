// Local write failures while caching a big part: a full disk is 507, an unwritable cache a clear 500.
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
  return new HttpError(500, `the cache under CACHE_DIR cannot be written (${code}): the ${what} cannot be cached`, { type: 'cache-not-writable', cause })
}
