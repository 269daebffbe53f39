// F6 readiness and state: login, JWT mode, CDN, hardware, caller auth, unlock state, loaded functions.
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { json } from '../../shared/http/json'
import { jwtMode } from '../../shared/contract/config'
import { publicView, readUnlock, UnlockStatusAnswer } from '../../shared/contract/unlock-state'
import { getAuth, getCdn } from '../../shared/upstream/session'

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
  callerAuth: v.picklist(['token', 'off']),
  insecureOpen: v.boolean(),
  clockOffsetMs: v.number(),
  warnings: v.array(v.string()),
  unlock: UnlockStatusAnswer,
  functions: v.array(v.object({ name: v.string(), sha256: v.string(), bytes: v.optional(v.number()), loadedAt: v.string() })),
})

export default defineFunction({
  name: 'status',
  routes: [{ method: 'GET', path: '/status', body: 'none', doc: {
    summary: 'Readiness and state: login, JWT mode, CDN, hardware, caller auth, unlock, loaded functions',
    answers: { 200: { description: 'the state of this loader', content: { 'application/json': StatusAnswer } } },
    problems: {},
  } }],
  async fetch(_request, env) {
    const { config } = env
    const [auth, cdn, hardware, unlock] = await Promise.all([
      getAuth(env.session), getCdn(env.session),
      env.hardware().catch(() => null),
      readUnlock(env.state),
    ])
    return json({
      status: 'ok',
      version: env.version,
      authenticated: !!auth,
      user: auth ? { email: auth.user.email, role: auth.user.role } : null,
      jwt: jwtMode(config),
      cdn: cdn ? 'configured' : 'not-configured',
      resourceApi: config.RESOURCE_API_URL ? 'configured' : 'not-configured',
      hardware: hardware?.source ?? 'unavailable',
      hardwareUnknown: hardware?.unknown ?? [],
      callerAuth: config.LOADER_API_TOKEN ? 'token' : 'off',
      insecureOpen: config.LOADER_INSECURE_OPEN && !config.LOADER_API_TOKEN,
      clockOffsetMs: env.clock.offsetMs(),
      warnings: env.warnings,
      unlock: publicView(unlock),
      functions: env.functions().map((f) => ({ name: f.name, sha256: f.sha256, bytes: f.bytes, loadedAt: f.loadedAt })),
    } satisfies v.InferOutput<typeof StatusAnswer>)
  },
})
