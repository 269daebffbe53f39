// F6 readiness and state: login, JWT mode, CDN, hardware, caller auth, transport, unlock state, downloads, cache, loaded functions.
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { json } from '../../shared/http/json'
import { jwtMode } from '../../shared/contract/jwt-mode'
import { publicView, readUnlock, UnlockStatusAnswer } from '../../shared/contract/unlock-state'
import { getSession } from '../../shared/upstream/session'

/** The 200 answer (and its OpenAPI schema). */
const StatusAnswer = v.object({
  status: v.literal('ok'),
  version: v.string(),
  authenticated: v.boolean(),
  user: v.nullable(v.object({ email: v.string(), role: v.string() })),
  jwt: v.picklist(['verified', 'unverified']),
  cdn: v.picklist(['configured', 'not-configured']),
  resourceApi: v.picklist(['configured', 'not-configured']),
  hardware: v.picklist(['detected', 'override', 'unavailable']),
  hardwareUnknown: v.array(v.string()),
  callerAuth: v.picklist(['mtls+token', 'mtls', 'token', 'off']),
  transport: v.picklist(['https', 'http']),
  insecureOpen: v.boolean(),
  clockOffsetMs: v.number(),
  warnings: v.array(v.string()),
  unlock: UnlockStatusAnswer,
  /** Big-part downloads in progress. */
  downloads: v.array(v.object({ folder: v.string(), filename: v.string(), bytesDone: v.number(), bytesTotal: v.number() })),
  /** The cache's use: committed big parts and the bound. */
  cache: v.object({ bytes: v.number(), maxBytes: v.number(), entries: v.number() }),
  functions: v.array(v.object({
    name: v.string(), version: v.union([v.number(), v.literal('factory')]), sha256: v.string(), bytes: v.optional(v.number()),
    source: v.picklist(['store', 'factory']), trial: v.boolean(), loadedAt: v.string(),
  })),
})

export default defineFunction({
  name: 'status',
  routes: [{ method: 'GET', path: '/status', body: 'none', doc: {
    summary: 'Readiness and state: login, JWT mode, CDN, hardware, caller auth, transport, unlock, downloads, cache use, loaded functions',
    answers: { 200: { description: 'the state of this loader', content: { 'application/json': StatusAnswer } } },
    problems: {},
  } }],
  async fetch(_request, env) {
    const { config } = env
    const [session, hardware, unlock, cache] = await Promise.all([
      getSession(env.session),
      env.hardware().catch(() => null),
      readUnlock(env.state, env.inflight),
      env.cache.usage(),
    ])
    const auth = session?.auth
    return json({
      status: 'ok',
      version: env.version,
      authenticated: !!auth,
      user: auth ? { email: auth.user.email, role: auth.user.role } : null,
      jwt: jwtMode(config),
      cdn: session?.cdn ? 'configured' : 'not-configured',
      resourceApi: config.RESOURCE_API_URL ? 'configured' : 'not-configured',
      hardware: hardware?.source ?? 'unavailable',
      hardwareUnknown: hardware?.unknown ?? [],
      // With mutual TLS every connection carries a verified certificate; with the token too, a request needs both.
      callerAuth: config.TLS_CLIENT_CA_FILE ? (config.LOADER_API_TOKEN ? 'mtls+token' : 'mtls') : config.LOADER_API_TOKEN ? 'token' : 'off',
      transport: config.TLS_CERT_FILE ? 'https' : 'http',
      insecureOpen: config.LOADER_INSECURE_OPEN && !config.LOADER_API_TOKEN && !config.TLS_CLIENT_CA_FILE,
      clockOffsetMs: env.clock.offsetMs(),
      warnings: env.warnings,
      unlock: publicView(unlock),
      downloads: env.downloads.list(),
      cache,
      functions: env.functions().map((f) => ({ name: f.name, version: f.version ?? 'factory', sha256: f.sha256, bytes: f.bytes,
        source: f.source ?? 'factory', trial: f.trial ?? false, loadedAt: f.loadedAt })),
    } satisfies v.InferOutput<typeof StatusAnswer>)
  },
})
