// Fetches the manifest of a resource through the Resource API and checks it (crypto.md §5b).
import * as v from 'valibot'
import type { Env } from '../../shared/contract/function'
import { HttpError, isHttpError } from '../../shared/contract/http-error'
import { decryptBuffer } from '../../shared/crypto/blob'
import { isBlobError } from '../../shared/crypto/errors'
import { apiAesKey } from '../../shared/crypto/keys'
import { ManifestSchema, manifestName, type Manifest } from '../../shared/crypto/manifest'
import { getResourceFile, withAuth } from '../../shared/upstream/resource-api'
import type { SessionAuth } from '../../shared/upstream/session'

/**
 * Fetches and checks the manifest; null only for a 404 (an older upload). A refusal (403), a session
 * to log in again (401) and a timeout (504) are answered as they are; anything else that fails is 502.
 */
export async function fetchManifest(env: Env, auth: SessionAuth, hardware: string, folder: string, filename: string): Promise<Manifest | null> {
  let blob: Buffer
  try {
    blob = await withAuth(env, `${folder}/${manifestName(filename)}`, (token, a) => getResourceFile(env, token, folder, manifestName(filename), a.password, hardware), auth)
  } catch (e) {
    if (isHttpError(e) && e.status === 404) return null
    if (isHttpError(e) && [401, 403, 504].includes(e.status)) throw e
    throw new HttpError(502, `the manifest of ${folder}/${filename} could not be fetched: ${(e as Error).message}`, { type: 'manifest-unavailable' })
  }
  try {
    const text = decryptBuffer(await apiAesKey(env, auth.email, auth.password), blob).toString('utf8')
    return v.parse(ManifestSchema, JSON.parse(text))
  } catch (e) {
    const why = isBlobError(e) ? 'it does not decrypt' : 'it is malformed'
    throw new HttpError(502, `the manifest of ${folder}/${filename} is unusable: ${why}`, { type: 'manifest-invalid' })
  }
}
