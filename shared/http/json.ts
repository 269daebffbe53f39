// JSON responses and bounded, validated JSON request bodies.
import * as v from 'valibot'
import { HttpError } from '../contract/http-error'
import { readLimited } from './read-limited'

/** A JSON response with no-store caching. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  })
}

/** The problems a JSON body can answer (readJson), for `/openapi.json`. */
export const JSON_BODY_PROBLEMS: Readonly<Record<number, string>> = Object.freeze({
  400: 'the body is not valid JSON',
  408: 'the client sent no byte of the body for CLIENT_STALL_TIMEOUT_MS (body-stalled)',
  415: 'the body is not application/json',
  422: 'a field is missing or invalid (the detail names it)',
})

/** Largest JSON body a route accepts. */
export const JSON_LIMIT = 64 * 1024

/** Reads at most `limit` bytes of a body as text; 413 above it. */
export async function readTextLimited(request: Request, limit = JSON_LIMIT): Promise<string> {
  const tooLarge = () => new HttpError(413, `the body is larger than ${limit} bytes`)
  if (Number(request.headers.get('content-length') ?? NaN) > limit) throw tooLarge()
  return (await readLimited(request.body, limit, tooLarge)).toString('utf8')
}

/**
 * Reads and validates a JSON body. An empty body is validated as `{}` when `allowEmpty`.
 * Wrong content type: 415; bad JSON or schema mismatch: 400/422 naming the field.
 */
export async function readJson<S extends v.GenericSchema>(request: Request, schema: S, allowEmpty = false): Promise<v.InferOutput<S>> {
  const text = await readTextLimited(request)
  const type = request.headers.get('content-type') ?? ''
  if (text.trim() === '' && allowEmpty) return parseWith(schema, {})
  if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type)) {
    throw new HttpError(415, 'send the body as application/json', { type: 'unsupported-media-type' })
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new HttpError(400, 'the body is not valid JSON', { type: 'invalid-json' })
  }
  return parseWith(schema, data)
}

/** Validates `data`; a mismatch is a 422 naming the first bad field. */
export function parseWith<S extends v.GenericSchema>(schema: S, data: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, data)
  if (result.success) return result.output
  const issue = result.issues[0]
  const path = v.getDotPath(issue)
  throw new HttpError(422, path ? `${path}: ${issue.message}` : issue.message, { type: 'invalid-input' })
}
