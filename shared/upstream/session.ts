// Typed access to the memory-only session: credentials, token, user and CDN settings, under one key.
import type { Storage } from 'unstorage'
import type { Role } from './roles'

/** The logged-in user as `/status` and the role checks see it. */
export interface SessionUser {
  email: string
  role: Role
}

/** The CDN settings from cdn.yaml. Uploader keys only for roles that may upload. */
export interface CdnSettings {
  host: string
  region: string
  downloaderAccessKey: string
  downloaderAccessSecret: string
  uploaderAccessKey?: string
  uploaderAccessSecret?: string
}

/** Everything a login leaves in the session. */
export interface SessionAuth {
  email: string
  password: string
  token: string
  /**
   * Random and never reused: new with every login and re-login. A re-login writes its token, or
   * clears a refused session, only while the session still has the id it started from.
   */
  id: string
  user: SessionUser
}

/** One login: credentials and token together with the CDN keys that login fetched. */
export interface Session {
  auth: SessionAuth
  cdn: CdnSettings
}

/** One key: a login is written in one step, so no reader pairs one user's token with another's CDN keys. */
const SESSION = 'session'

/** The whole session, or null when nobody is logged in. */
export const getSession = (s: Storage) => s.getItem<Session>(SESSION)
/** Replaces the whole session in one write. */
export const setSession = (s: Storage, session: Session) => s.setItem(SESSION, session as never)
export const getAuth = async (s: Storage) => (await getSession(s))?.auth ?? null
export const getCdn = async (s: Storage) => (await getSession(s))?.cdn ?? null
/** Forgets the login and CDN settings. */
export const clearSession = (s: Storage) => s.removeItem(SESSION)

/** Counts logouts: a login that started before a logout must not write its session after it. */
const LOGOUTS = 'logouts'
/** The number of logouts so far (a login compares it before and after its upstream calls). */
export const getLogoutEpoch = async (s: Storage) => (await s.getItem<number>(LOGOUTS)) ?? 0
/** Logs out: forgets the session and makes every login still running drop its result. */
export async function logout(s: Storage): Promise<void> {
  await s.setItem(LOGOUTS, (await getLogoutEpoch(s)) + 1)
  await clearSession(s)
}
