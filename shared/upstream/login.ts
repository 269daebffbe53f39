// Logging in: upstream login, token check, cdn.yaml fetched and decrypted, session filled (F1).
import type { Env } from '../contract/function'
import { HttpError } from '../contract/http-error'
import { decryptBuffer } from '../crypto/blob'
import { isBlobError } from '../crypto/errors'
import { parseCdnYaml } from './cdn-config'
import { apiAesKey, fingerprint } from '../crypto/keys'
import { getResourceFile, loginUpstream } from './resource-api'
import { mayUpload } from './roles'
import { randomUUID } from 'node:crypto'
import { getLogoutEpoch, setSession, type SessionAuth } from './session'
import { upstreamProblem, upstreamStatus } from './errors'

/** Logs in with `email`/`password`, keeps credentials, token and CDN settings in the memory session. */
export async function performLogin(env: Env, email: string, password: string): Promise<SessionAuth> {
  const epoch = await getLogoutEpoch(env.session)
  const { token, claims } = await loginUpstream(env, email, password)
  const hardware = await fingerprint(env)
  let blob: Buffer
  try {
    blob = await getResourceFile(env, token, null, 'cdn.yaml', password, hardware)
  } catch (e) {
    const s = upstreamStatus(e)
    if (s === 403 || s === 401) throw new HttpError(403, 'the Resource API refuses this device or role', { type: 'upstream-forbidden' })
    if (s === 404) throw new HttpError(502, 'the Resource API has no cdn.yaml', { type: 'bad-cdn-config' })
    throw upstreamProblem('the Resource API', 'cdn.yaml', e)
  }
  let yaml: string
  try {
    yaml = decryptBuffer(await apiAesKey(env, email, password), blob).toString('utf8')
  } catch (e) {
    if (isBlobError(e)) throw new HttpError(502, 'cdn.yaml does not decrypt with this user\'s device key (salts or fingerprint differ from the API\'s)', { type: 'bad-cdn-config' })
    throw e
  }
  const cdn = parseCdnYaml(yaml, mayUpload(claims.role))
  const auth: SessionAuth = { email, password, token, id: randomUUID(), user: { email: claims.email, role: claims.role } }
  // A logout asked while this login ran wins: the session is not brought back after it.
  if (await getLogoutEpoch(env.session) !== epoch) {
    throw new HttpError(409, 'a logout was asked while this login ran: the session stays logged out', { type: 'logged-out-meanwhile' })
  }
  // Credentials, token and CDN keys in one write: a concurrent login replaces all of them or none.
  await setSession(env.session, { auth, cdn })
  env.log.info({ email: claims.email, role: claims.role }, 'logged in')
  return auth
}
