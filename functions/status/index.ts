// F6 readiness and state: login, JWT mode, CDN, hardware, caller auth, unlock state, loaded functions.
import type { LoaderFunction } from '../../shared/function'
import { json } from '../../shared/json'
import { getAuth, getCdn } from '../../shared/session'

export default {
  name: 'status',
  routes: [{ method: 'GET', path: '/status', body: 'none' }],
  async fetch(_request, env) {
    const { config } = env
    const [auth, cdn, hardware, unlock] = await Promise.all([
      getAuth(env.session), getCdn(env.session),
      env.hardware().catch(() => null),
      env.state.getItem<{ state: string }>('unlock:status'),
    ])
    return json({
      status: 'ok',
      version: env.version,
      authenticated: !!auth,
      user: auth ? { email: auth.user.email, role: auth.user.role } : null,
      jwt: config.JWT_SECRET || config.JWT_PUBLIC_KEY || config.JWKS_URL ? 'verified' : 'unverified',
      cdn: cdn ? 'configured' : 'not-configured',
      resourceApi: config.RESOURCE_API_URL ? 'configured' : 'not-configured',
      hardware: hardware?.source ?? 'unavailable',
      hardwareUnknown: hardware?.unknown ?? [],
      callerAuth: config.LOADER_API_TOKEN ? 'token' : 'off',
      insecureOpen: config.LOADER_INSECURE_OPEN && !config.LOADER_API_TOKEN,
      clockOffsetMs: env.clock.offsetMs(),
      warnings: env.warnings,
      unlock: unlock ?? { state: 'idle' },
      functions: env.functions().map((f) => ({ name: f.name, sha256: f.sha256, bytes: f.bytes, loadedAt: f.loadedAt })),
    })
  },
} satisfies LoaderFunction
