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
  /** Increases with every login, so a 401 on an older token reuses the newer one. */
  generation: number
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
