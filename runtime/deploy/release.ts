// The release format of deploy.md §1: release.json's schema and the refusal every check throws.
import type { RouteDef } from '../../shared/contract/function'
import * as v from 'valibot'
import { HttpError } from '../../shared/contract/http-error'

const Route = v.object({
  method: v.picklist(['GET', 'POST', 'PUT', 'DELETE']),
  path: v.pipe(v.string(), v.regex(/^\//, 'a route path starts with /')),
  body: v.optional(v.picklist(['json', 'stream', 'none'])),
  rateLimited: v.optional(v.boolean()),
  transfer: v.optional(v.boolean()),
  public: v.optional(v.boolean()),
})

/** A function name: what build.mjs accepts as a folder under functions/. */
export const FUNCTION_NAME = /^[a-z][a-z0-9-]{0,62}$/

/** release.json, version 1. */
export const ReleaseSchema = v.object({
  v: v.literal(1),
  function: v.pipe(v.string(), v.regex(FUNCTION_NAME, 'not a function name')),
  version: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER)),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected 64 hex')),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0)),
  routes: v.array(Route),
  contract: v.pipe(v.number(), v.integer()),
  builtAt: v.pipe(v.string(), v.isoTimestamp()),
  source: v.nullable(v.string()),
  keyId: v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/, 'expected 16 hex')),
})

/** A parsed release.json. */
export type Release = v.InferOutput<typeof ReleaseSchema>

/** A deployment or a release refused by a check; the message is the reason shown to the operator. */
export class Refused extends HttpError {
  constructor(reason: string, status = 422) {
    super(status, reason, { type: 'deployment-refused' })
  }
}

/** Refused because the artifact is not the signed one: a stored release so damaged never loads again. */
export class Damaged extends Refused {}

/** The first issue of a failed parse as one line (`version: expected …`). */
export function firstIssue(issues: v.BaseIssue<unknown>[]): string {
  const i = issues[0]
  return `${v.getDotPath(i) ?? 'release.json'}: ${i.message}`
}

/** The store folder name of a release: `<version>-<first 12 hex of sha256>`. */
export const releaseDirName = (r: Pick<Release, 'version' | 'sha256'>) => `${r.version}-${r.sha256.slice(0, 12)}`

/** A function's routes as a release signs them (and the manifest lists them): without their OpenAPI docs. */
export const signedRoutes = (routes: readonly RouteDef[]) => routes.map(({ doc: _doc, ...r }) => r)

const Routes = v.array(Route)

/**
 * True when a module's routes are the signed ones, whatever the key order on either side: both are
 * read through the release schema (docs and unknown keys dropped, keys in one order) and compared.
 */
export function sameRoutes(mine: readonly RouteDef[], signed: Release['routes']): boolean {
  const a = v.safeParse(Routes, signedRoutes(mine))
  const b = v.safeParse(Routes, signed)
  return a.success && b.success && JSON.stringify(a.output) === JSON.stringify(b.output)
}
