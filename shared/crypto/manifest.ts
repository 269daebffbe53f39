// The tamper-evidence manifest of crypto.md §5b–5c: its schema, its file name and its exact bytes.
// Upload writes it through the Resource API; load fetches and checks it (functions/load/manifest.ts).
import * as v from 'valibot'

const hex = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))
const count = v.pipe(v.number(), v.integer(), v.minValue(0))

/** The chunk size uploads write chunk hashes for (crypto.md §5c). */
export const CHUNK_BYTES = 4 * 1024 * 1024

/** Number of chunks of a big part of `bigBytes` cut in `chunkBytes`. */
export const chunkCount = (bigBytes: number, chunkBytes: number) => Math.ceil(bigBytes / chunkBytes)

/**
 * `{"v":1,"bytes","blobBytes","smallBytes","sha256Big","sha256Small","sha256Plain"}`, optionally
 * with `"chunkBytes"` and `"chunks"` (§5c): both or neither, one hash per chunk of the big part.
 */
export const ManifestSchema = v.pipe(
  v.object({
    v: v.literal(1), bytes: count, blobBytes: count, smallBytes: count, sha256Big: hex, sha256Small: hex, sha256Plain: hex,
    chunkBytes: v.optional(v.pipe(count, v.minValue(1))), chunks: v.optional(v.array(hex)),
  }),
  v.check((m) => (m.chunkBytes === undefined) === (m.chunks === undefined), 'chunkBytes and chunks go together'),
  v.check((m) => m.smallBytes <= m.blobBytes, 'smallBytes exceeds blobBytes'),
  v.check((m) => m.chunks === undefined || m.chunks.length === chunkCount(m.blobBytes - m.smallBytes, m.chunkBytes!),
    'the number of chunks does not fit blobBytes - smallBytes'),
)
export type Manifest = v.InferOutput<typeof ManifestSchema>

/** The manifest's file name beside a resource. */
export const manifestName = (filename: string) => `${filename}.manifest`

/** The manifest's bytes, in the key order of the spec (the chunk fields last, when present). */
export const encodeManifest = (m: Manifest) => Buffer.from(JSON.stringify({
  v: 1, bytes: m.bytes, blobBytes: m.blobBytes, smallBytes: m.smallBytes, sha256Big: m.sha256Big, sha256Small: m.sha256Small, sha256Plain: m.sha256Plain,
  ...(m.chunks ? { chunkBytes: m.chunkBytes, chunks: m.chunks } : {}),
}))
