// Client of the Resource API (http.md §2.1): bearer token, one shared re-login on 401/403, read retries.
import { ofetch, type $Fetch } from 'ofetch'
import { randomUUID } from 'node:crypto'
import type { Env } from '../contract/function'
import { HttpError } from '../contract/http-error'
import { clearSession, getAuth, getSession, setSession, type SessionAuth } from './session'
import { isTimeout, upstreamProblem, upstreamStatus } from './errors'
import type { TokenClaims } from '../contract/tokens'
import type { ApiCall } from '../contract/metrics'
import { readLimited } from '../http/read-limited'

const WHO = 'the Resource API'
/** Largest body accepted for a small file (small parts, cdn.yaml, manifests). */
const SMALL_LIMIT = 1 << 20

/** RESOURCE_API_URL; a 503 problem when it is not configured (http.md §1: missing configuration). */
export function resourceApiUrl(env: Env): string {
  const url = env.config.RESOURCE_API_URL
  if (!url) throw new HttpError(503, 'RESOURCE_API_URL is not configured on this loader', { type: 'not-configured' })
  return url
}

/** The HTTP client for RESOURCE_API_URL; 503 when it is not configured. No automatic retry, no redirect followed. */
export function apiClient(env: Env): $Fetch {
  return ofetch.create({
    baseURL: resourceApiUrl(env),
    timeout: env.config.API_TIMEOUT_MS,
    retry: 0,
    // A redirect is not followed: a 307/308 would send the login's or a read's password to wherever it points.
    redirect: 'error',
    onResponse: ({ request, response }) => {
      env.clock.observe(response.headers.get('date'))
      env.metrics.apiCall(callOf(request), `${response.status}`)
    },
    onRequestError: ({ request, error }) => env.metrics.apiCall(callOf(request), isTimeout(error) ? 'timeout' : 'error'),
  })
}

/** Which Resource API call a request is, for the metrics' bounded `call` label. */
function callOf(request: unknown): ApiCall {
  const path = typeof request === 'string' ? request : (request as { url?: string })?.url ?? ''
  if (/\/login$/.test(path)) return 'login'
  if (/\/resources\/get(\/[^/]*)?$/.test(path)) return 'get_resource'
  if (/\/resources\/[^/]+$/.test(path)) return 'put_resource'
  if (/\/binary-split\/key-fragment$/.test(path)) return 'key_fragment'
  return 'other'
}

/** A read answered with this status is tried again: a timeout (408) or any 5xx (a proxy's 520–524 too). */
const retriableStatus = (status: number) => status === 408 || (status >= 500 && status <= 599)

/**
 * Runs one of the two reads, retried API_READ_RETRIES times on timeouts and 5xx with a growing
 * backoff (250 ms, 500 ms, 1 s … at most 4 s). Each attempt is a new call with its own timeout
 * signal (ofetch's own retry reuses the aborted one), which `call` passes to ofetch: unlike
 * ofetch's `timeout`, whose timer stops when the headers arrive, it also bounds the body read,
 * so a body that stalls is a timeout (retried, finally 504), not undici's 300 s wait.
 */
async function readWithRetries<T>(env: Env, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(AbortSignal.timeout(env.config.API_TIMEOUT_MS))
    } catch (e) {
      const status = e instanceof HttpError ? undefined : upstreamStatus(e)
      const retriable = isTimeout(e) || (status !== undefined && retriableStatus(status))
      if (!retriable || attempt >= env.config.API_READ_RETRIES) throw e
      await new Promise((r) => setTimeout(r, Math.min(4000, 250 * 2 ** attempt)))
    }
  }
}

/** `POST /login`; 401 upstream is 401 here. Returns the token and its verified claims. */
export async function loginUpstream(env: Env, email: string, password: string): Promise<{ token: string; claims: TokenClaims }> {
  let body: { token?: unknown } | null
  try {
    // The signal bounds the whole call, the answer's body too (ofetch's `timeout` stops at the headers).
    const res = await apiClient(env).raw('/login', { method: 'POST', body: { email, password }, responseType: 'stream', signal: AbortSignal.timeout(env.config.API_TIMEOUT_MS) })
    body = await smallJson(res.body, 'the login answer')
  } catch (e) {
    if (upstreamStatus(e) === 401) throw new HttpError(401, 'the Resource API refused these credentials', { type: 'bad-credentials' })
    throw upstreamProblem(WHO, 'the login', e)
  }
  if (typeof body?.token !== 'string') throw new HttpError(502, 'the Resource API login answer has no token', { type: 'upstream-error' })
  return { token: body.token, claims: await env.tokens.read(body.token, env.clock.now()) }
}

/** A newer login of the same user serves the caller; another user's (after a logout) never does. */
function sameUser(newer: SessionAuth, seen: SessionAuth): SessionAuth {
  if (newer.email === seen.email) return newer
  throw new HttpError(401, 'the session changed to another user while this request ran (logout and login): repeat it', { type: 'not-logged-in', headers: { 'www-authenticate': 'Bearer' } })
}

/** Logs in again with the stored credentials; concurrent callers share one re-login. */
function relogin(env: Env, seen: SessionAuth): Promise<SessionAuth> {
  return env.inflight.run('relogin', async () => {
    const current = await getSession(env.session)
    if (!current) throw new HttpError(401, 'not logged in: POST /login first', { type: 'not-logged-in', headers: { 'www-authenticate': 'Bearer' } })
    // Another re-login or a new login replaced the token the caller saw: use the newer one.
    if (current.auth.id !== seen.id) return sameUser(current.auth, seen)
    const { email, password, id } = current.auth
    let fresh
    try {
      fresh = await loginUpstream(env, email, password)
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 401)) throw e
      // A newer login made meanwhile is used as it is.
      const latest = await getAuth(env.session)
      if (latest && latest.id !== id) return sameUser(latest, seen)
      // The stored credentials are refused (a changed password): forget them rather than retry
      // them on every call (account lockout).
      if (latest) await clearSession(env.session)
      env.log.warn({ email }, 'the Resource API refused the stored credentials: session cleared')
      throw new HttpError(401, 'the Resource API refused the stored credentials (changed password?): log in again with POST /login', { type: 'not-logged-in', headers: { 'www-authenticate': 'Bearer' } })
    }
    // A login that happened meanwhile wins: its credentials, token and CDN keys stay together.
    const now = await getSession(env.session)
    if (!now || now.auth.id !== id) {
      if (!now) throw new HttpError(401, 'not logged in: POST /login first', { type: 'not-logged-in', headers: { 'www-authenticate': 'Bearer' } })
      return sameUser(now.auth, seen)
    }
    const next = { ...now.auth, token: fresh.token, id: randomUUID(), user: { email: fresh.claims.email, role: fresh.claims.role } }
    await setSession(env.session, { ...now, auth: next })
    env.log.info({ email: fresh.claims.email }, 're-logged in to the Resource API')
    return next
  })
}

/**
 * Runs `call` with the session's token. On 401/403: one shared re-login (or the newer token
 * another caller already got) and one repeat; a second 403 is 403 here. `write`: a 404 is the
 * Resource API's failure (502), not a missing resource.
 */
export async function withAuth<T>(env: Env, what: string, call: (token: string, auth: SessionAuth) => Promise<T>, auth?: SessionAuth, write = false): Promise<T> {
  let a = auth ?? await getAuth(env.session)
  if (!a) throw new HttpError(401, 'not logged in: POST /login first', { type: 'not-logged-in' })
  try {
    return await call(a.token, a)
  } catch (e) {
    const s = upstreamStatus(e)
    if (s !== 401 && s !== 403) throw mapNon401(e, what, write)
  }
  a = await relogin(env, a)
  try {
    return await call(a.token, a)
  } catch (e) {
    const s = upstreamStatus(e)
    if (s === 403 || s === 401) throw new HttpError(403, 'the Resource API refuses this device or role', { type: 'upstream-forbidden' })
    throw mapNon401(e, what, write)
  }
}

/** A read's 404 is the caller's "no such resource"; a write's 404 is the Resource API failing (502). */
function mapNon401(e: unknown, what: string, write: boolean): HttpError {
  if (!write && upstreamStatus(e) === 404) return new HttpError(404, `${what}: not found on the Resource API`, { type: 'not-found' })
  return upstreamProblem(WHO, what, e)
}

/**
 * `POST /resources/get[/{folder}]`: a small encrypted file for this user and device.
 * `folder` null means a root-level file such as cdn.yaml.
 */
export async function getResourceFile(env: Env, token: string, folder: string | null, fileName: string, password: string, hardware: string): Promise<Buffer> {
  const path = folder ? `/resources/get/${encodeURIComponent(folder)}` : '/resources/get'
  return readWithRetries(env, async (signal) => {
    const res = await apiClient(env).raw(path, {
      method: 'POST', body: { password, hardware, fileName }, headers: { authorization: `Bearer ${token}` }, responseType: 'stream', signal,
    })
    try {
      return await readLimited(res.body as ReadableStream<Uint8Array>, SMALL_LIMIT,
        () => new HttpError(502, `${fileName} from the Resource API is larger than ${SMALL_LIMIT} bytes`, { type: 'upstream-error' }))
    } catch (e) {
      // A stalled body is a timeout (504, its cause a TimeoutError): readWithRetries retries it.
      throw upstreamProblem(WHO, `the body of ${fileName}`, e)
    }
  })
}

/** `POST /resources/{folder}` multipart, file field `data`: a write, never retried. */
export async function putResourceFile(env: Env, token: string, folder: string, fileName: string, bytes: Uint8Array): Promise<void> {
  const form = new FormData()
  form.append('data', new Blob([new Uint8Array(bytes)], { type: 'application/octet-stream' }), fileName)
  // The signal bounds the whole call, the answer's body too: a stalled answer is a 504, not a hung upload.
  const res = await apiClient(env).raw(`/resources/${encodeURIComponent(folder)}`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` }, responseType: 'stream', signal: AbortSignal.timeout(env.config.API_TIMEOUT_MS) })
  // The status says it all: the answer's body is not read (however large it is).
  void (res.body as ReadableStream<Uint8Array> | null)?.cancel().catch(() => {})
}

/**
 * A small JSON answer, read at most SMALL_LIMIT bytes (502 past it: a flood is never read whole
 * into memory); what does not parse as JSON is null.
 */
async function smallJson<T>(body: ReadableStream<Uint8Array> | null | undefined, what: string): Promise<T | null> {
  const bytes = await readLimited(body, SMALL_LIMIT, () => new HttpError(502, `${what} from the Resource API is larger than ${SMALL_LIMIT} bytes`, { type: 'upstream-error' }))
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch {
    return null
  }
}

/** `GET /binary-split/key-fragment`: the archive key string. */
export async function getKeyFragment(env: Env, token: string): Promise<string> {
  const body = await readWithRetries(env, async (signal) => {
    const res = await apiClient(env).raw('/binary-split/key-fragment', { headers: { authorization: `Bearer ${token}` }, responseType: 'stream', signal })
    return smallJson<{ keyFragment?: unknown }>(res.body as ReadableStream<Uint8Array>, 'the key fragment answer')
  })
  if (typeof body?.keyFragment !== 'string' || !body.keyFragment) throw new HttpError(502, 'the key fragment answer has no keyFragment', { type: 'upstream-error' })
  return body.keyFragment
}
