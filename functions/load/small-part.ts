// The small part of a resource from the Resource API, decrypted: the licence check of every load and prefetch (crypto.md §5 step 1).
import { createHash } from 'node:crypto'
import type { Env } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { decryptBuffer } from '../../shared/crypto/blob'
import { isBlobError } from '../../shared/crypto/errors'
import { apiAesKey } from '../../shared/crypto/keys'
import { getResourceFile, withAuth } from '../../shared/upstream/resource-api'
import type { SessionAuth } from '../../shared/upstream/session'

/** Fetches and decrypts `<filename>.small`; returns its bytes and SHA-256 (hex). */
export async function fetchSmallPart(env: Env, auth: SessionAuth, hardware: string, folder: string, filename: string): Promise<{ small: Buffer; sha256: string }> {
  const blob = await withAuth(env, `${folder}/${filename}`, (token, a) => getResourceFile(env, token, folder, `${filename}.small`, a.password, hardware), auth)
  let small: Buffer
  try {
    small = decryptBuffer(await apiAesKey(env, auth.email, auth.password), blob)
  } catch (e) {
    if (isBlobError(e)) throw new HttpError(502, `the small part of ${folder}/${filename} does not decrypt with this device's key`, { type: 'decrypt-failed' })
    throw e
  }
  return { small, sha256: createHash('sha256').update(small).digest('hex') }
}
