// Session and role checks shared by the flows: 401 without a login, 403 for a role that may not.
import type { Env } from '../contract/function'
import { HttpError } from '../contract/http-error'
import type { Role } from '../upstream/roles'
import { getSession, type CdnSettings, type SessionAuth } from '../upstream/session'

/** The logged-in session whose role passes `allowed`, with its CDN settings. */
export async function requireSession(env: Env, allowed: (role: Role) => boolean, action: string): Promise<{ auth: SessionAuth; cdn: CdnSettings }> {
  if (!env.config.RESOURCE_API_URL) throw new HttpError(503, 'RESOURCE_API_URL is not configured on this loader', { type: 'not-configured' })
  const session = await getSession(env.session)
  if (!session) throw new HttpError(401, 'not logged in: POST /login first', { type: 'not-logged-in', headers: { 'www-authenticate': 'Bearer' } })
  const { auth, cdn } = session
  if (!allowed(auth.user.role)) throw new HttpError(403, `the role ${auth.user.role} may not ${action}`, { type: 'forbidden-role' })
  return { auth, cdn }
}
