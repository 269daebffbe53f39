// F6 readiness and state: login, JWT mode, CDN, hardware, caller auth, unlock state, downloads, cache, loaded functions.
import { defineFunction } from '../../shared/contract/function'
import { json } from '../../shared/http/json'
import { jwtMode } from '../../shared/contract/config'
import { publicView, readUnlock } from '../../shared/contract/unlock-state'
import { getAuth, getCdn } from '../../shared/upstream/session'

export default defineFunction({
  name: 'status',
  routes: [{ method: 'GET', path: '/status', body: 'none' }],
  async fetch(_request, env) {
    const { config } = env
    const [auth, cdn, hardware, unlock, cache] = await Promise.all([
      getAuth(env.session), getCdn(env.session),
      env.hardware().catch(() => null),
      readUnlock(env.state),
      env.cache.usage(),
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
      downloads: env.downloads.list(),
      cache,
      functions: env.functions().map((f) => ({ name: f.name, sha256: f.sha256, bytes: f.bytes, loadedAt: f.loadedAt })),
    })
  },
})
