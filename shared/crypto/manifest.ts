// The tamper-evidence manifest of crypto.md §5b: its schema, its file name and its exact bytes.
// Upload writes it through the Resource API; load fetches and checks it (functions/load/manifest.ts).
import * as v from 'valibot'

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
