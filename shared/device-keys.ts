// The key strings of this device and session, from env.hardware() and the salts.
import type { Env } from './function'
import { aesKey } from './crypto/blob'
import { apiDownloadKey, hardwareHash, resourceKey } from './crypto/keys'

/** The fingerprint string sent upstream as `hardware`. */
export const fingerprint = async (env: Env) => (await env.hardware()).fingerprint

/** AES key of the API download key for this user on this device. */
export async function apiAesKey(env: Env, email: string, password: string): Promise<Buffer> {
  const hw = hardwareHash(await fingerprint(env), env.config.HARDWARE_SALT)
  return aesKey(apiDownloadKey(email, password, hw, env.config.API_KEY_SALT))
}

/** AES key of the global resource key. */
export const resourceAesKey = (env: Env) => aesKey(resourceKey(env.config.RESOURCE_KEY_SALT))
