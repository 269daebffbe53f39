// Typed access to the memory-only session: credentials, token, user and CDN settings.
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

const AUTH = 'auth'
const CDN = 'cdn'

export const getAuth = (s: Storage) => s.getItem<SessionAuth>(AUTH)
export const setAuth = (s: Storage, a: SessionAuth) => s.setItem(AUTH, a as never)
export const getCdn = (s: Storage) => s.getItem<CdnSettings>(CDN)
export const setCdn = (s: Storage, c: CdnSettings) => s.setItem(CDN, c as never)

/** Forgets the login and CDN settings. */
export const clearSession = async (s: Storage) => { await s.removeItem(AUTH); await s.removeItem(CDN) }
