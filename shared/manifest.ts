// The tamper-evidence manifest of crypto.md §5b: written through the API on upload, checked on load.
import * as v from 'valibot'
import type { Env } from './function'
import { HttpError, isHttpError } from './http-error'
import { decryptBuffer } from './crypto/blob'
import { isBlobError } from './crypto/errors'
import { apiAesKey } from './device-keys'
import { getResourceFile, withAuth } from './resource-api'
import type { SessionAuth } from './session'

const hex = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))
const count = v.pipe(v.number(), v.integer(), v.minValue(0))

/** `{"v":1,"bytes","blobBytes","smallBytes","sha256Big","sha256Small","sha256Plain"}`. */
export const ManifestSchema = v.object({
  v: v.literal(1), bytes: count, blobBytes: count, smallBytes: count, sha256Big: hex, sha256Small: hex, sha256Plain: hex,
})
export type Manifest = v.InferOutput<typeof ManifestSchema>

/** The manifest's file name beside a resource. */
export const manifestName = (filename: string) => `${filename}.manifest`

/** The manifest's bytes, in the key order of the spec. */
export const encodeManifest = (m: Manifest) => Buffer.from(JSON.stringify({
  v: 1, bytes: m.bytes, blobBytes: m.blobBytes, smallBytes: m.smallBytes, sha256Big: m.sha256Big, sha256Small: m.sha256Small, sha256Plain: m.sha256Plain,
}))

/** Fetches and checks the manifest; null only for a 404 (an older upload). Anything else that fails is 502. */
export async function fetchManifest(env: Env, auth: SessionAuth, hardware: string, folder: string, filename: string): Promise<Manifest | null> {
  let blob: Buffer
  try {
    blob = await withAuth(env, `${folder}/${manifestName(filename)}`, (token, a) => getResourceFile(env, token, folder, manifestName(filename), a.password, hardware), auth)
  } catch (e) {
    if (isHttpError(e) && e.status === 404) return null
    if (isHttpError(e) && e.status === 403) throw e
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
