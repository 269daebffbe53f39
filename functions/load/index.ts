// F2: POST /load/:filename — the decrypted resource, from the API's small part and the cached big part;
// POST /prefetch/:filename — the licence check, then the big part into the cache in the background.
import * as v from 'valibot'
import { defineFunction, type Ctx, type Env } from '../../shared/contract/function'
import type { HeldPart } from '../../shared/contract/cache'
import { JSON_BODY_PROBLEMS, json, readJson } from '../../shared/http/json'
import { checkFilename, FilenameParam, FolderParam, requestFolder } from '../../shared/http/names'
import { requireSession } from '../../shared/http/require-session'
import { mayLoad } from '../../shared/upstream/roles'
import { fingerprint, resourceAesKey } from '../../shared/crypto/keys'
import type { Manifest } from '../../shared/crypto/manifest'
import { UPSTREAM_PROBLEMS } from '../../shared/upstream/errors'
import { acquireCached, ensureBigPart } from './big-part'
import { openResource } from './resource-stream'
import { toWebStream } from './web-stream'
import { fetchManifest } from './manifest'
import { fetchSmallPart } from './small-part'
import { verifiedDownload } from './cold-load'
import { verifiedResource } from './verified-stream'

const LoadBody = v.object({ folder: v.optional(v.string('must be a string')) })
const PrefetchAnswer = v.object({ folder: v.string(), filename: v.string(), state: v.picklist(['downloading', 'cached']) })

const PROBLEMS = Object.freeze({ ...JSON_BODY_PROBLEMS, ...UPSTREAM_PROBLEMS,
  401: 'not logged in (POST /login first)', 403: 'the role may not load, or the Resource API refuses this device',
  404: 'the Resource API has no such resource', 422: 'invalid filename, folder or body field, or a body "folder" that disagrees with ?folder=',
  502: 'the parts do not belong together, fail their integrity check or do not decrypt; or an upstream failed',
  503: 'RESOURCE_API_URL is not configured, or MAX_CONCURRENT_TRANSFERS are running', 507: 'the device disk is full' })

/** What /load and /prefetch share: names, session, the small part (the licence check), warm or cold. */
async function prepare(request: Request, env: Env, ctx: Ctx) {
  const filename = checkFilename(ctx.params.filename)
  const body = await readJson(request, LoadBody, true)
  // Either names the folder; both may be given when they agree (as for upload).
  const folder = requestFolder(body.folder, new URL(request.url).searchParams.get('folder'), "body's")
  const { auth, cdn } = await requireSession(env, mayLoad, 'load resources')

  // 1. The small part: the licence check, made on every load.
  const hardware = await fingerprint(env)
  const { small, sha256 } = await fetchSmallPart(env, auth, hardware, folder, filename)
  const part = { sha256, bytes: small.length, tail: small.subarray(-32) }
  // Concurrent cold loads of one part share one manifest fetch.
  const getManifest = () => env.inflight.run(`manifest:${folder}/${filename}:${sha256}`, () => fetchManifest(env, auth, hardware, folder, filename))
  // A warm part is held from here until the response ends.
  let warm: HeldPart | null = await acquireCached(env, folder, filename)
  if (warm && warm.record.smallSha256 !== sha256) {
    warm.release()
    warm = null
  }
  if (warm) env.metrics.cacheLookup('hit')
  const cold = warm ? null : await verifiedDownload(env, cdn, folder, filename, part, getManifest)
  // The download-then-send path gets the manifest already fetched, if it was.
  const manifestOnce = cold && 'manifest' in cold && cold.manifest !== undefined ? () => Promise.resolve(cold.manifest as Manifest | null) : getManifest
  return { filename, folder, cdn, small, part, warm, cold, manifestOnce }
}

export default defineFunction({
  name: 'load',
  routes: [
    { method: 'POST', path: '/load/:filename', transfer: true, doc: {
      summary: 'The decrypted resource, streamed: small part from the Resource API (the licence check), big part from the cache or the CDN',
      description: 'A cold load whose manifest has chunk hashes (crypto.md §5c) answers once the first chunk is verified and sends each chunk as soon as it is verified; '
        + 'a failure after that cuts the connection (the body is shorter than Content-Length), never an unverified byte.',
      params: { filename: FilenameParam },
      query: { folder: FolderParam },
      body: { 'application/json': LoadBody },
      answers: { 200: { description: 'the decrypted resource, with an exact Content-Length', content: { 'application/octet-stream': 'binary' },
        headers: { 'content-disposition': 'attachment; filename="<filename>"', 'x-content-sha256': 'SHA-256 of the plaintext, when the resource has a manifest' } } },
      problems: PROBLEMS,
    } },
    { method: 'POST', path: '/prefetch/:filename', doc: {
      summary: 'The licence check, then the big part into the cache in the background (nothing is decrypted)',
      params: { filename: FilenameParam },
      query: { folder: FolderParam },
      body: { 'application/json': LoadBody },
      answers: { 202: { description: 'the big part is cached already, or its download runs in the background (GET /status lists it)', content: { 'application/json': PrefetchAnswer } } },
      problems: { ...PROBLEMS, 401: 'not logged in (POST /login first)', 503: 'RESOURCE_API_URL is not configured' },
    } },
  ],
  async fetch(request, env, ctx) {
    const { filename, folder, cdn, small, part, warm, cold, manifestOnce } = await prepare(request, env, ctx)

    if (new URL(request.url).pathname.startsWith('/prefetch/')) {
      // Nothing is decrypted: the big part goes into the cache in the background.
      warm?.release()
      let state: 'downloading' | 'cached' = 'downloading'
      if (cold && 'job' in cold) {
        env.metrics.cacheLookup('miss')
        ctx.waitUntil(cold.job.settled.then(() => { if (cold.job.failure) throw cold.job.failure }))
      } else if (cold) ctx.waitUntil(ensureBigPart(env, cdn, folder, filename, part, manifestOnce).then((held) => held.release()))
      else state = 'cached'
      ctx.log.info({ folder, filename, state }, 'prefetch')
      return json({ folder, filename, state } satisfies v.InferOutput<typeof PrefetchAnswer>, 202)
    }

    const headers = (bytes: number, manifest?: Manifest) => ({
      'content-type': 'application/octet-stream',
      'content-length': String(bytes),
      'content-disposition': `attachment; filename="${filename}"`,
      'cache-control': 'no-store',
      ...(manifest ? { 'x-content-sha256': manifest.sha256Plain } : {}),
    })

    // A cold load with chunk hashes: each chunk's plaintext goes out as soon as it is verified (crypto.md §5c).
    if (cold && 'job' in cold && cold.job.attach()) {
      const { job } = cold
      env.metrics.cacheLookup('miss')
      try {
        await job.ready()
        // Nothing was sent to this caller yet: a failed download is a clean problem answer, not a cut.
        if (job.failure) throw job.failure
      } catch (e) {
        job.detach()
        throw e
      }
      ctx.log.info({ folder, filename, bytes: job.manifest.bytes, streaming: true }, 'load')
      return new Response(toWebStream(verifiedResource(job, small, resourceAesKey(env))), { status: 200, headers: headers(job.manifest.bytes, job.manifest) })
    }

    // 2. The big part, from the cache or the CDN (held until the response ends); 3–4. checked, then streamed.
    const held = warm ?? await ensureBigPart(env, cdn, folder, filename, part, manifestOnce)
    const { body, bytes } = await openResource(env, held, folder, filename, small)
    ctx.log.info({ folder, filename, bytes }, 'load')
    return new Response(body, { status: 200, headers: headers(bytes, held.record.manifest) })
  },
})
