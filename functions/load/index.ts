// F2: POST /load/:filename — the decrypted resource, from the API's small part and the cached big part;
// POST /prefetch/:filename — the licence check, then the big part into the cache in the background.
import * as v from 'valibot'
import { defineFunction, type Ctx, type Env } from '../../shared/contract/function'
import { json, readJson } from '../../shared/http/json'
import { checkFilename, checkFolder } from '../../shared/http/names'
import { requireSession } from '../../shared/http/require-session'
import { mayLoad } from '../../shared/upstream/roles'
import { fingerprint, resourceAesKey } from '../../shared/crypto/keys'
import type { Manifest } from '../../shared/crypto/manifest'
import { ensureBigPart } from './big-part'
import { openResource } from './resource-stream'
import { toWebStream } from './web-stream'
import { fetchManifest } from './manifest'
import { fetchSmallPart } from './small-part'
import { verifiedDownload } from './cold-load'
import { verifiedResource } from './verified-stream'

const LoadBody = v.object({ folder: v.optional(v.string('must be a string')) })

/** What /load and /prefetch share: names, session, the small part (the licence check), the manifest getter. */
async function prepare(request: Request, env: Env, ctx: Ctx) {
  const filename = checkFilename(ctx.params.filename)
  const body = await readJson(request, LoadBody, true)
  const folder = checkFolder(body.folder ?? new URL(request.url).searchParams.get('folder'))
  const { auth, cdn } = await requireSession(env, mayLoad, 'load resources')

  // 1. The small part: the licence check, made on every load.
  const hardware = await fingerprint(env)
  const { small, sha256 } = await fetchSmallPart(env, auth, hardware, folder, filename)
  const part = { sha256, bytes: small.length }
  // Concurrent cold loads of one part share one manifest fetch.
  const getManifest = () => env.inflight.run(`manifest:${folder}/${filename}:${sha256}`, () => fetchManifest(env, auth, hardware, folder, filename))
  const warm = await env.cache.record(folder, filename)
  const cold = warm?.smallSha256 === sha256 ? null : await verifiedDownload(env, cdn, folder, filename, part, getManifest)
  // The download-then-send path gets the manifest already fetched, if it was.
  const manifestOnce = cold && 'manifest' in cold && cold.manifest !== undefined ? () => Promise.resolve(cold.manifest as Manifest | null) : getManifest
  return { filename, folder, cdn, small, part, cold, manifestOnce }
}

export default defineFunction({
  name: 'load',
  routes: [
    { method: 'POST', path: '/load/:filename', transfer: true },
    { method: 'POST', path: '/prefetch/:filename' },
  ],
  async fetch(request, env, ctx) {
    const { filename, folder, cdn, small, part, cold, manifestOnce } = await prepare(request, env, ctx)

    if (new URL(request.url).pathname.startsWith('/prefetch/')) {
      // Nothing is decrypted: the big part goes into the cache in the background.
      let state: 'downloading' | 'cached' = 'downloading'
      if (cold && 'job' in cold) ctx.waitUntil(cold.job.settled.then(() => { if (cold.job.failure) throw cold.job.failure }))
      else if (cold) ctx.waitUntil(ensureBigPart(env, cdn, folder, filename, part, manifestOnce))
      else state = 'cached'
      ctx.log.info({ folder, filename, state }, 'prefetch')
      return json({ folder, filename, state }, 202)
    }

    const headers = (bytes: number, manifest?: Manifest) => ({
      'content-type': 'application/octet-stream',
      'content-length': String(bytes),
      'content-disposition': `attachment; filename="${filename}"`,
      'cache-control': 'no-store',
      ...(manifest ? { 'x-content-sha256': manifest.sha256Plain } : {}),
    })

    // A cold load with chunk hashes: each chunk's plaintext goes out as soon as it is verified (crypto.md §5c).
    if (cold && 'job' in cold) {
      const { job } = cold
      await job.ready()
      if (job.failure && job.verified === 0) throw job.failure
      ctx.log.info({ folder, filename, bytes: job.manifest.bytes, streaming: true }, 'load')
      return new Response(toWebStream(verifiedResource(env, job, small, resourceAesKey(env))), { status: 200, headers: headers(job.manifest.bytes, job.manifest) })
    }

    // 2. The big part, from the cache or the CDN; 3–4. checked, then streamed.
    const record = await ensureBigPart(env, cdn, folder, filename, part, manifestOnce)
    const { stream, bytes } = await openResource(env, folder, filename, small)
    ctx.log.info({ folder, filename, bytes }, 'load')
    return new Response(toWebStream(stream), { status: 200, headers: headers(bytes, record.manifest) })
  },
})
