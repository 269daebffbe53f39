// The one error type the loader answers with: an HTTP status plus an RFC 9457 problem body.

/** Problem type URIs are relative to this base. */
const TYPE_BASE = 'https://loader.local/problems/'

export interface ProblemInit {
  /** Short, stable title; defaults to the status's reason phrase. */
  title?: string
  /** What went wrong and what to fix. Never a secret. */
  detail?: string
  /** Slug appended to the problem type base, e.g. `invalid-filename`. */
  type?: string
  /** Extra headers, e.g. `Retry-After`. */
  headers?: Record<string, string>
  /** Extra members of the problem body. */
  extra?: Record<string, unknown>
  cause?: unknown
}

const REASONS: Readonly<Record<number, string>> = Object.freeze({
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict', 411: 'Length Required', 413: 'Content Too Large',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 507: 'Insufficient Storage',
})

/** An error that carries the HTTP answer it should become. */
export class HttpError extends Error {
  readonly status: number
  readonly title: string
  readonly type: string
  readonly headers: Record<string, string>
  readonly extra: Record<string, unknown>

  constructor(status: number, detail?: string, init: ProblemInit = {}) {
    super(detail ?? init.detail ?? REASONS[status] ?? 'Error', { cause: init.cause })
    this.name = 'HttpError'
    this.status = status
    this.title = init.title ?? REASONS[status] ?? 'Error'
    this.type = init.type ? TYPE_BASE + init.type : 'about:blank'
    this.headers = init.headers ?? {}
    this.extra = init.extra ?? {}
  }

  /** The problem+json response; `requestId` is added when known. */
  getResponse(requestId?: string): Response {
    return problemResponse(this.status, {
      type: this.type, title: this.title, status: this.status, detail: this.message,
      ...this.extra, ...(requestId ? { requestId } : {}),
    }, this.headers)
  }
}

/** Builds an `application/problem+json` response from a problem object. */
export function problemResponse(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...headers },
  })
}

/** True for HttpError instances, including ones made by another bundle's copy of the class. */
export function isHttpError(e: unknown): e is HttpError {
  return e instanceof HttpError || (typeof e === 'object' && e !== null && (e as { name?: string }).name === 'HttpError'
    && typeof (e as HttpError).status === 'number' && typeof (e as HttpError).getResponse === 'function')
}
