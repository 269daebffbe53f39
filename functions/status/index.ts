// F6 readiness and state: login, JWT mode, CDN, hardware, caller auth, unlock state, loaded functions.
import { defineFunction } from '../../shared/contract/function'
import { json } from '../../shared/http/json'
import { jwtMode } from '../../shared/contract/jwt-mode'
import { publicView, readUnlock } from '../../shared/contract/unlock-state'
import { getSession } from '../../shared/upstream/session'

export default defineFunction({
  name: 'status',
  routes: [{ method: 'GET', path: '/status', body: 'none' }],
  async fetch(_request, env) {
    const { config } = env
    const [session, hardware, unlock] = await Promise.all([
      getSession(env.session),
      env.hardware().catch(() => null),
      readUnlock(env.state),
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
      // With mutual TLS every connection carries a verified certificate, which suffices on its own.
      callerAuth: config.TLS_CLIENT_CA_FILE ? 'mtls' : config.LOADER_API_TOKEN ? 'token' : 'off',
      transport: config.TLS_CERT_FILE ? 'https' : 'http',
      insecureOpen: config.LOADER_INSECURE_OPEN && !config.LOADER_API_TOKEN && !config.TLS_CLIENT_CA_FILE,
      clockOffsetMs: env.clock.offsetMs(),
      warnings: env.warnings,
      unlock: publicView(unlock),
      functions: env.functions().map((f) => ({ name: f.name, version: f.version ?? 'factory', sha256: f.sha256, bytes: f.bytes,
        source: f.source ?? 'factory', trial: f.trial ?? false, loadedAt: f.loadedAt })),
    })
  },
})
