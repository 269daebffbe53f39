// Builds the OpenAPI 3.1 document of the served routes from the valibot schemas the functions validate with.
import { toJsonSchema } from '@valibot/to-json-schema'
import * as v from 'valibot'
import type { BodyDoc, RouteDef } from '../shared/contract/function'
import { JSON_LIMIT } from '../shared/http/json'
import { isPublic, isRateLimited } from './route-policy'

/** The problem+json body every error answer has (RFC 9457), as the runtime's error handler writes it. */
export const ProblemSchema = v.object({
  type: v.pipe(v.string(), v.description('about:blank or https://loader.local/problems/<slug>')),
  title: v.string(),
  status: v.pipe(v.number(), v.integer()),
  detail: v.pipe(v.string(), v.description('what went wrong and what to fix; never a secret')),
  requestId: v.pipe(v.string(), v.description('also in the X-Request-Id header and the log')),
})

/** A route as served: its definition and the function (or `runtime`) that serves it. */
export interface ServedRoute { route: RouteDef; fn: string }

type Json = Record<string, unknown>

/** A valibot schema as JSON Schema 2020-12 (the dialect of OpenAPI 3.1); transforms such as trim are left out. */
export function jsonSchemaOf(schema: v.GenericSchema): Json {
  const { $schema: _drop, ...rest } = toJsonSchema(schema, { target: 'draft-2020-12', errorMode: 'ignore' }) as Json
  return rest
}

const bodySchema = (b: BodyDoc, type: string): Json => (b === 'binary' ? { type: 'string', contentMediaType: type } : jsonSchemaOf(b))
const content = (c: Record<string, BodyDoc>) => Object.fromEntries(Object.entries(c).map(([type, b]) => [type, { schema: bodySchema(b, type) }]))
const problem = (description: string, headers?: Json) => ({
  description, headers: { 'x-request-id': header('the request id, also in the body and the log'), ...headers },
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
})
const header = (description: string) => ({ description, schema: { type: 'string' } })

/** The problems the runtime's middleware adds to a route, by what the route declares. */
function runtimeProblems(route: RouteDef): Record<number, string> {
  const out: Record<number, string> = {}
  if (!isPublic(route)) out[401] = 'missing or wrong caller token (when LOADER_API_TOKEN is set)'
  if ((route.body ?? 'json') === 'json') out[413] = `the body is larger than ${JSON_LIMIT} bytes`
  if (isRateLimited(route)) out[429] = 'too many attempts from this address (LOGIN_RATE_PER_MINUTE); see Retry-After'
  if (route.transfer) out[503] = 'MAX_CONCURRENT_TRANSFERS are running; see Retry-After'
  out[405] = 'the path does not answer this method; Allow lists the ones it does'
  out[500] = 'a bug: the log has the request id'
  return out
}

/** The operation object of one route. */
function operation({ route, fn }: ServedRoute, callerToken: boolean): Json {
  const doc = route.doc ?? { summary: `${route.method} ${route.path}`, answers: { 200: { description: 'success' } }, problems: {} }
  const problems: Record<number, string> = { ...doc.problems }
  for (const [status, why] of Object.entries(runtimeProblems(route))) {
    problems[Number(status)] = problems[Number(status)] ? `${problems[Number(status)]}; or ${why}` : why
  }
  const responses: Json = {}
  for (const [status, a] of Object.entries(doc.answers)) {
    responses[status] = {
      description: a.description,
      headers: {
        'x-request-id': header('the request id (also in the log)'),
        ...Object.fromEntries(Object.entries(a.headers ?? {}).map(([n, d]) => [n, header(d)])),
      },
      ...(a.content ? { content: content(a.content) } : {}),
    }
  }
  for (const [status, why] of Object.entries(problems)) {
    const s = Number(status)
    responses[status] = problem(why, s === 429 || s === 503 ? { 'retry-after': header('seconds to wait (503: when the transfer slots are full)') }
      : s === 401 ? { 'www-authenticate': header('Bearer') } : s === 405 ? { allow: header('the methods this path answers') } : undefined)
  }
  const parameters = [
    ...Object.entries(doc.params ?? {}).map(([name, schema]) => ({ name, in: 'path', required: true, schema: jsonSchemaOf(schema) })),
    ...Object.entries(doc.query ?? {}).map(([name, schema]) => ({ name, in: 'query', required: false, schema: jsonSchemaOf(schema) })),
  ]
  return {
    operationId: `${route.method.toLowerCase()}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    tags: [fn],
    ...(parameters.length ? { parameters } : {}),
    ...(doc.body ? { requestBody: { required: doc.bodyRequired ?? false, content: content(doc.body) } } : {}),
    responses,
    ...(isPublic(route) ? { security: [] } : callerToken ? { security: [{ callerToken: [] }] } : {}),
  }
}

/** `operation`, or the undocumented form when the function's doc cannot be read (a deployed release's doc is its own): never a 500 for the whole document. */
function safeOperation(r: ServedRoute, callerToken: boolean): Json {
  try {
    return operation(r, callerToken)
  } catch (e) {
    const undocumented = operation({ ...r, route: { ...r.route, doc: undefined } }, callerToken)
    return { ...undocumented, description: `The route's own documentation could not be read (${(e as Error).message}).` }
  }
}

/** The OpenAPI 3.1 document of `routes`. */
export function openApiDocument(routes: ServedRoute[], opts: { version: string; callerToken: boolean }): Json {
  const paths: Record<string, Json> = {}
  for (const r of routes) {
    const path = r.route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    paths[path] = { ...paths[path], [r.route.method.toLowerCase()]: safeOperation(r, opts.callerToken) }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'loader',
      version: opts.version,
      description: 'The edge loader\'s routes (http.md §1). Generated from the valibot schemas and route definitions of the loaded functions: a redeployed function updates it. Every error is application/problem+json.',
    },
    paths,
    components: {
      schemas: { Problem: jsonSchemaOf(ProblemSchema) },
      securitySchemes: { callerToken: { type: 'http', scheme: 'bearer', description: 'LOADER_API_TOKEN' } },
    },
  }
}
