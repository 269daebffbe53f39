// The four key strings of crypto.md §2.
import { createHash } from 'node:crypto'

const b64sha384 = (s: string) => createHash('sha384').update(s, 'utf8').digest('base64')

/** Hardware hash `hw` of a fingerprint string. */
export const hardwareHash = (fingerprint: string, hardwareSalt: string): string =>
  b64sha384('Azaion_' + fingerprint + hardwareSalt)

/** Key string the API encrypts downloads for this user on this device. */
export const apiDownloadKey = (email: string, password: string, hwHash: string, apiKeySalt: string): string =>
  b64sha384(email + password + hwHash + apiKeySalt)

/** The global resource key string that encrypts every resource blob. */
export const resourceKey = (resourceKeySalt: string): string => b64sha384(resourceKeySalt)
