// Maps a failed upstream call to the problem the caller sees: 502, 504 on timeout; never a secret.
import { HttpError } from '../contract/http-error'

type Link = { name?: unknown; message?: unknown; code?: unknown; cause?: unknown }

/** `e` and the errors it wraps (fetch and ofetch nest the real one in `cause`), at most four deep. */
function* causeChain(e: unknown): Generator<Link> {
  for (let x = e as Link | undefined, i = 0; x && i < 4; x = x.cause as Link | undefined, i++) yield x
}

/** True when `e` is a timeout of fetch/ofetch (AbortSignal.timeout). */
export function isTimeout(e: unknown): boolean {
  for (const x of causeChain(e)) if (x.name === 'TimeoutError') return true
  return false
}

/** True when fetch refused to follow a redirect (`redirect: 'error'`). */
function isRedirect(e: unknown): boolean {
  for (const x of causeChain(e)) if (x.message === 'unexpected redirect') return true
  return false
}

/** OpenSSL's verification codes (node's `err.code`) for a certificate the loader does not accept. */
const CERT_CODE = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|ERR_TLS_CERT_ALTNAME_INVALID$|HOSTNAME_MISMATCH$|INVALID_CA$|INVALID_PURPOSE$)/

/** The certificate error code in `e`'s cause chain (fetch wraps it, node:https throws it), if any. */
function certificateCode(e: unknown): string | undefined {
  for (const x of causeChain(e)) if (typeof x.code === 'string' && CERT_CODE.test(x.code)) return x.code
  return undefined
}

/** The status of an upstream answer carried by an ofetch error, if any. */
export const upstreamStatus = (e: unknown): number | undefined =>
  (e as { response?: { status?: number } })?.response?.status ?? (e as { status?: number })?.status

/** A problem for `what` failing at `who` (e.g. "the Resource API", "the CDN"). */
export function upstreamProblem(who: string, what: string, e: unknown): HttpError {
  if (e instanceof HttpError) return e
  if (isTimeout(e)) return new HttpError(504, `${who} did not answer ${what} in time`, { type: 'upstream-timeout', cause: e })
  const status = upstreamStatus(e)
  if (status) return new HttpError(502, `${who} answered ${status} to ${what}`, { type: 'upstream-error', extra: { upstreamStatus: status } })
  if (isRedirect(e)) return new HttpError(502, `${who} answered ${what} with a redirect, which is not followed (check its URL)`, { type: 'upstream-error', cause: e })
  const cert = certificateCode(e)
  if (cert) {
    return new HttpError(502, `${who}'s TLS certificate was not accepted for ${what} (${cert}): a private CA needs NODE_EXTRA_CA_CERTS; else check its validity and name`, { type: 'upstream-certificate', cause: e })
  }
  return new HttpError(502, `${who} could not be reached for ${what}`, { type: 'upstream-unreachable', cause: e })
}

/** The problems a flow that calls the Resource API or the CDN can answer, for `/openapi.json`. */
export const UPSTREAM_PROBLEMS: Readonly<Record<number, string>> = Object.freeze({
  502: 'the Resource API or the CDN failed, or what it sent does not check out',
  503: 'RESOURCE_API_URL is not configured',
  504: 'the Resource API or the CDN did not answer in time',
})
