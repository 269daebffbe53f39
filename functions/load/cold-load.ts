// Chooses how a cold load gets its big part: a verified streaming download (manifest with chunk
// hashes, crypto.md §5c), started or joined, or the download-then-send path of §5 and §5b.
import type { Env } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { blobLength } from '../../shared/crypto/blob'
import type { Manifest } from '../../shared/crypto/manifest'
import type { CdnSettings } from '../../shared/upstream/session'
import { bigPartKey, type SmallPart } from './big-part'
import { chunkedKey, startChunkedDownload } from './chunked-download'
import type { DownloadJob } from './download-job'

/**
 * The shared verified download of this part (started when needed), or `{ manifest }` for the
 * download-then-send path (`manifest` undefined: not fetched, null: an older upload), or null
 * when the part became cached meanwhile.
 */
export async function verifiedDownload(env: Env, cdn: CdnSettings, folder: string, filename: string, small: SmallPart,
  getManifest: () => Promise<Manifest | null>): Promise<{ job: DownloadJob } | { manifest?: Manifest | null } | null> {
  const running = env.downloads.get<DownloadJob>(chunkedKey(folder, filename, small.sha256))
  if (running) return { job: running }
  // A download-then-send download of this part is running: join it (it fetches the manifest itself).
  if (env.inflight.has(bigPartKey(folder, filename, small.sha256))) return {}
  const manifest = await getManifest()
  if (!manifest?.chunks) return { manifest }
  if (manifest.sha256Small !== small.sha256 || manifest.smallBytes !== small.bytes) {
    throw new HttpError(502, `the small part of ${folder}/${filename} does not match its manifest`, { type: 'integrity' })
  }
  if (manifest.blobBytes !== blobLength(manifest.bytes)) {
    throw new HttpError(502, `the manifest of ${folder}/${filename} is unusable: its lengths do not fit the padding rule`, { type: 'manifest-invalid' })
  }
  const have = await env.cache.record(folder, filename)
  if (have && have.smallSha256 === small.sha256) return null
  // Checked again after the awaits, in the same step as the start: a download-then-send of this
  // part that began meanwhile owns the partial file (two downloads would append to one file).
  if (env.inflight.has(bigPartKey(folder, filename, small.sha256))) return {}
  return { job: startChunkedDownload(env, cdn, folder, filename, small, manifest) }
}
