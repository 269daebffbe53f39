// Parses and validates the decrypted cdn.yaml (http.md §2.2); a bad field is named.
import * as v from 'valibot'
import { HttpError } from '../contract/http-error'
import type { CdnSettings } from './session'
import { FlatYamlError, parseFlatYaml } from './flat-yaml'

const text = v.pipe(v.string('must be a string'), v.trim(), v.minLength(1, 'must not be empty'))

/** Schema of cdn.yaml. */
export const CdnYamlSchema = v.object({
  host: v.pipe(text, v.url('must be an http(s) URL'), v.regex(/^https?:\/\//, 'must be an http(s) URL')),
  region: v.optional(text, 'us-east-1'),
  downloader_access_key: text,
  downloader_access_secret: text,
  uploader_access_key: v.optional(text),
  uploader_access_secret: v.optional(text),
})

/** Parses cdn.yaml; the uploader keys are required and kept only when `mayUpload`. Throws 502 naming the field. */
export function parseCdnYaml(source: string, mayUpload: boolean): CdnSettings {
  let doc: unknown
  try {
    doc = parseFlatYaml(source)
  } catch (e) {
    const where = e instanceof FlatYamlError ? ` (line ${e.line}: ${e.reason})` : ''
    throw new HttpError(502, `cdn.yaml is not a flat YAML mapping of strings${where}`, { type: 'bad-cdn-config' })
  }
  const r = v.safeParse(CdnYamlSchema, doc ?? {})
  if (!r.success) {
    const field = v.getDotPath(r.issues[0]) ?? 'document'
    const missing = r.issues[0].input === undefined
    throw new HttpError(502, `cdn.yaml: ${field} ${missing ? 'is missing' : r.issues[0].message}`, { type: 'bad-cdn-config', extra: { field } })
  }
  const c = r.output
  // A role that may upload needs both uploader keys (the API may leave them out for the others).
  if (mayUpload) {
    for (const field of ['uploader_access_key', 'uploader_access_secret'] as const) {
      if (!c[field]) throw new HttpError(502, `cdn.yaml: ${field} is missing (the role may upload)`, { type: 'bad-cdn-config', extra: { field } })
    }
  }
  return {
    host: c.host.replace(/\/+$/, ''),
    region: c.region,
    downloaderAccessKey: c.downloader_access_key,
    downloaderAccessSecret: c.downloader_access_secret,
    ...(mayUpload ? { uploaderAccessKey: c.uploader_access_key, uploaderAccessSecret: c.uploader_access_secret } : {}),
  }
}
