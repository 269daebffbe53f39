// Client of the Resource API (http.md §2.1): bearer token, one shared re-login on 401/403, read retries.
import { ofetch, type $Fetch } from 'ofetch'
import type { Env } from '../contract/function'
import { HttpError } from '../contract/http-error'
import { getAuth, setAuth, type SessionAuth } from './session'
import { isTimeout, upstreamProblem, upstreamStatus } from './errors'
import type { ApiCall } from '../contract/metrics'
import { readToken, type TokenClaims } from './jwt'
import { readLimited } from '../http/read-limited'

const WHO = 'the Resource API'
/** Largest body accepted for a small file (small parts, cdn.yaml, manifests). */
const SMALL_LIMIT = 1 << 20

/** The HTTP client for RESOURCE_API_URL; 503 when it is not configured. No automatic retry. */
export function apiClient(env: Env): $Fetch {
  const baseURL = env.config.RESOURCE_API_URL
  if (!baseURL) throw new HttpError(503, 'RESOURCE_API_URL is not configured on this loader', { type: 'not-configured' })
  return ofetch.create({
    baseURL,
    timeout: env.config.API_TIMEOUT_MS,
    retry: 0,
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

/** Per-call options of the two reads: bounded retries with backoff on timeouts and 5xx. */
const readRetry = (env: Env) => ({
  retry: env.config.API_READ_RETRIES,
  retryDelay: 250,
  retryStatusCodes: [408, 500, 502, 503, 504],
})

/** `POST /login`; 401 upstream is 401 here. Returns the token and its verified claims. */
export async function loginUpstream(env: Env, email: string, password: string): Promise<{ token: string; claims: TokenClaims }> {
  let body: { token?: unknown }
  try {
    body = await apiClient(env)('/login', { method: 'POST', body: { email, password } })
  } catch (e) {
    if (upstreamStatus(e) === 401) throw new HttpError(401, 'the Resource API refused these credentials', { type: 'bad-credentials' })
    throw upstreamProblem(WHO, 'the login', e)
  }
  if (typeof body?.token !== 'string') throw new HttpError(502, 'the Resource API login answer has no token', { type: 'upstream-error' })
  return { token: body.token, claims: await readToken(body.token, env.config, env.clock.now()) }
}

/** Logs in again with the stored credentials; concurrent callers share one re-login. */
function relogin(env: Env, seen: SessionAuth): Promise<SessionAuth> {
  return env.inflight.run('relogin', async () => {
    const current = await getAuth(env.session)
    if (!current) throw new HttpError(401, 'not logged in: POST /login first', { type: 'not-logged-in' })
    if (current.generation > seen.generation) return current
    const { token, claims } = await loginUpstream(env, current.email, current.password)
    const next = { ...current, token, generation: current.generation + 1, user: { email: claims.email, role: claims.role } }
    await setAuth(env.session, next)
    env.log.info({ email: claims.email }, 're-logged in to the Resource API')
    return next
  })
}

/**
 * Runs `call` with the session's token. On 401/403: one shared re-login (or the newer token
 * another caller already got) and one repeat; a second 403 is 403 here.
 */
export async function withAuth<T>(env: Env, what: string, call: (token: string, auth: SessionAuth) => Promise<T>, auth?: SessionAuth): Promise<T> {
  let a = auth ?? await getAuth(env.session)
  if (!a) throw new HttpError(401, 'not logged in: POST /login first', { type: 'not-logged-in' })
  try {
    return await call(a.token, a)
  } catch (e) {
    const s = upstreamStatus(e)
    if (s !== 401 && s !== 403) throw mapNon401(e, what)
  }
  a = await relogin(env, a)
  try {
    return await call(a.token, a)
  } catch (e) {
    const s = upstreamStatus(e)
    if (s === 403 || s === 401) throw new HttpError(403, 'the Resource API refuses this device or role', { type: 'upstream-forbidden' })
    throw mapNon401(e, what)
  }
}

function mapNon401(e: unknown, what: string): HttpError {
  if (upstreamStatus(e) === 404) return new HttpError(404, `${what}: not found on the Resource API`, { type: 'not-found' })
  return upstreamProblem(WHO, what, e)
}

/**
 * `POST /resources/get[/{folder}]`: a small encrypted file for this user and device.
 * `folder` null means a root-level file such as cdn.yaml.
 */
export async function getResourceFile(env: Env, token: string, folder: string | null, fileName: string, password: string, hardware: string): Promise<Buffer> {
  const path = folder ? `/resources/get/${encodeURIComponent(folder)}` : '/resources/get'
  const res = await apiClient(env).raw(path, {
    method: 'POST', body: { password, hardware, fileName }, headers: { authorization: `Bearer ${token}` },
    responseType: 'stream', ...readRetry(env),
  })
  try {
    return await readLimited(res.body as ReadableStream<Uint8Array>, SMALL_LIMIT,
      () => new HttpError(502, `${fileName} from the Resource API is larger than ${SMALL_LIMIT} bytes`, { type: 'upstream-error' }))
  } catch (e) {
    throw upstreamProblem(WHO, `the body of ${fileName}`, e)
  }
}

/** `POST /resources/{folder}` multipart, file field `data`: a write, never retried. */
export async function putResourceFile(env: Env, token: string, folder: string, fileName: string, bytes: Uint8Array): Promise<void> {
  const form = new FormData()
  form.append('data', new Blob([new Uint8Array(bytes)], { type: 'application/octet-stream' }), fileName)
  await apiClient(env)(`/resources/${encodeURIComponent(folder)}`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } })
}

/** `GET /binary-split/key-fragment`: the archive key string. */
export async function getKeyFragment(env: Env, token: string): Promise<string> {
  const body = await apiClient(env)<{ keyFragment?: unknown }>('/binary-split/key-fragment', { headers: { authorization: `Bearer ${token}` }, ...readRetry(env) })
  if (typeof body?.keyFragment !== 'string' || !body.keyFragment) throw new HttpError(502, 'the key fragment answer has no keyFragment', { type: 'upstream-error' })
  return body.keyFragment
}
