// The key strings of crypto.md §2, and the AES keys of this device and session (from env).
import { createHash } from 'node:crypto'
import type { Env } from '../contract/function'
import { aesKey } from './blob'

const b64sha384 = (s: string) => createHash('sha384').update(s, 'utf8').digest('base64')

/** Hardware hash `hw` of a fingerprint string. */
export const hardwareHash = (fingerprint: string, hardwareSalt: string): string =>
  b64sha384('Azaion_' + fingerprint + hardwareSalt)

/** Key string the API encrypts downloads for this user on this device. */
export const apiDownloadKey = (email: string, password: string, hwHash: string, apiKeySalt: string): string =>
  b64sha384(email + password + hwHash + apiKeySalt)

/** The global resource key string that encrypts every resource blob. */
export const resourceKey = (resourceKeySalt: string): string => b64sha384(resourceKeySalt)

/** The fingerprint string sent upstream as `hardware`. */
export const fingerprint = async (env: Env) => (await env.hardware()).fingerprint

/** AES key of the API download key for this user on this device. */
export async function apiAesKey(env: Env, email: string, password: string): Promise<Buffer> {
  const hw = hardwareHash(await fingerprint(env), env.config.HARDWARE_SALT)
  return aesKey(apiDownloadKey(email, password, hw, env.config.API_KEY_SALT))
}

/** AES key of the global resource key. */
export const resourceAesKey = (env: Env) => aesKey(resourceKey(env.config.RESOURCE_KEY_SALT))
