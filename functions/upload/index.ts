// F3: POST /upload/:filename — encrypt, split, then big part to the CDN, manifest, small part to the API (the commit point), local cache.
import type { Readable } from 'node:stream'
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { json } from '../../shared/http/json'
import { checkFilename, checkFolder, FilenameParam, FolderParam, requestFolder } from '../../shared/http/names'
import { requireSession } from '../../shared/http/require-session'
import { mayUpload } from '../../shared/upstream/roles'
import { openUploadBody } from './body'
import { uploadOnePass } from './one-pass'
import { bigPartUrl, cdnRequest, cdnStatusProblem } from '../../shared/upstream/cdn'
import { putResourceFile, withAuth } from '../../shared/upstream/resource-api'
import { upstreamProblem, UPSTREAM_PROBLEMS } from '../../shared/upstream/errors'
import { encodeManifest, manifestName } from '../../shared/crypto/manifest'
import { isLocalFsError, localStorageProblem } from '../../shared/http/local-storage-error'
import { exclusive } from './exclusive'
import { phaseClock } from './phases'
import { stageUpload, tooLarge, type StagedUpload } from './stage'

/** The 201 answer (and its OpenAPI schema). */
export const UploadAnswer = v.object({ filename: v.string(), folder: v.string(), bytes: v.number(), smallBytes: v.number(), bigBytes: v.number(),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)) })

export default defineFunction({
  name: 'upload',
  routes: [{ method: 'POST', path: '/upload/:filename', body: 'stream', transfer: true, doc: {
    summary: 'Encrypts and splits a new resource: big part to the CDN and the cache, small part to the Resource API',
    params: { filename: FilenameParam },
    query: { folder: FolderParam },
    body: {
      'application/octet-stream': 'binary',
      'multipart/form-data': v.object({ data: v.pipe(v.unknown(), v.description('the file (a file part)')), folder: v.optional(FolderParam) }),
    },
    bodyRequired: true,
    answers: { 201: { description: 'stored', content: { 'application/json': UploadAnswer } } },
    problems: { ...UPSTREAM_PROBLEMS,
      400: 'the body ended early, is longer or shorter than its Content-Length, or is not well-formed multipart (or has two "data" or "folder" parts)', 401: 'not logged in (POST /login first)',
      408: 'the client sent no byte of the body for CLIENT_STALL_TIMEOUT_MS (upload-stalled)',
      403: 'the role may not upload, or the Resource API refuses it', 409: 'an upload of this folder/filename is already running on this device',
      413: 'larger than UPLOAD_MAX_BYTES', 415: 'neither application/octet-stream nor multipart/form-data', 422: 'invalid filename or folder, a multipart "folder" that disagrees with ?folder=, or no file field "data"',
      503: 'RESOURCE_API_URL is not configured, or MAX_CONCURRENT_TRANSFERS are running', 507: 'the device disk is full or CACHE_DIR cannot be written' },
  } }],
  async fetch(request, env, ctx) {
    const filename = checkFilename(ctx.params.filename)
    const queryFolder = new URL(request.url).searchParams.get('folder')
    if (queryFolder !== null) checkFolder(queryFolder)
    const { auth, cdn } = await requireSession(env, mayUpload, 'upload resources')
    if (!cdn.uploaderAccessKey) throw new HttpError(403, 'this session has no CDN uploader keys', { type: 'forbidden-role' })
    const max = env.config.UPLOAD_MAX_BYTES
    if (Number(request.headers.get('content-length') ?? 0) > max + 64 * 1024) throw tooLarge(max)

    const body = await openUploadBody(request, env.config.CLIENT_STALL_TIMEOUT_MS)
    // A raw body of known length: one pass, no ciphertext temporary file (crypto.md §4).
    if (body.length !== undefined) {
      if (body.length > max) {
        body.data.destroy()
        throw tooLarge(max)
      }
      const folder = checkFolder(queryFolder)
      try {
        return await exclusive(env, folder, filename, () => uploadOnePass(env, ctx, { data: body.data, length: body.length!, idleMs: body.idleMs, filename, folder, auth, cdn }))
      } finally {
        body.data.destroy()
      }
    }
    const temp = env.cache.temp('upload')
    let bigPart: Readable | undefined
    const clock = phaseClock()
    const stage = () => stageUpload(env, body.data, temp, max).then((staged) => (clock.mark('body'), staged))
    try {
      // A raw body names its folder up front: the upload is serialised before a byte is read.
      // A multipart body names it in a field, known once the body has been read.
      if (body.raw) {
        const folder = checkFolder(queryFolder)
        return await exclusive(env, folder, filename, async () => commitUpload(folder, await stage()))
      }
      const staged = await stage()
      const named = await body.folder
      const folder = requestFolder(named, queryFolder, 'multipart')
      return await exclusive(env, folder, filename, () => commitUpload(folder, staged))
    } finally {
      body.data.destroy()
      // A PUT the CDN refused or cut leaves the file stream open: destroyed here on every path.
      bigPart?.destroy()
      await temp.remove()
    }

    /** Big part → manifest → small part (the commit point) → local cache. */
    async function commitUpload(folder: string, { bytes, sha256, parts }: StagedUpload) {
      // The big part first, with its exact length and both hashes; a consumed stream is never retried.
      bigPart = temp.read()
      let readError: NodeJS.ErrnoException | undefined
      bigPart.once('error', (e) => { readError = e })
      let res
      try {
        res = await cdnRequest(env, cdn, 'write', {
          method: 'PUT',
          url: bigPartUrl(cdn, folder, filename),
          headers: {
            'content-length': String(parts.bigBytes),
            'content-type': 'application/octet-stream',
            'x-amz-content-sha256': parts.bigSha256,
            'x-amz-meta-sha256': parts.bigSha256,
            'x-amz-meta-small-sha256': parts.smallSha256,
          },
          body: bigPart,
        })
      } catch (e) {
        if (readError && isLocalFsError(readError)) throw localStorageProblem(readError, 'the upload (reading its temporary file back)', 'local-storage')
        throw upstreamProblem('the CDN', 'the big-part upload', e)
      }
      if (res.statusCode !== 200) {
        // Refused before the whole body was sent: drop the connection rather than keep sending.
        res.destroy()
        throw cdnStatusProblem(res.statusCode ?? 0, 'big-part upload')
      }
      res.resume()
      clock.mark('cdn')
      const etag = Array.isArray(res.headers.etag) ? res.headers.etag[0] : res.headers.etag

      // Then the manifest, anchoring integrity in the authenticated API (crypto.md §5b).
      const manifest = { v: 1 as const, bytes, blobBytes: parts.blobBytes, smallBytes: parts.small.length, sha256Big: parts.bigSha256, sha256Small: parts.smallSha256, sha256Plain: sha256, chunkBytes: parts.chunkBytes, chunks: parts.chunks }
      await withAuth(env, `${folder}/${manifestName(filename)}`, (token) => putResourceFile(env, token, folder, manifestName(filename), encodeManifest(manifest)), auth, true)

      // The small part last: it is the commit point.
      await withAuth(env, `${folder}/${filename}.small`, (token) => putResourceFile(env, token, folder, `${filename}.small`, parts.small), auth, true)
      clock.mark('api')

      // The upload is live upstream from here: a local cache failure only costs a later download.
      try {
        await env.cache.commit(folder, filename, { smallSha256: parts.smallSha256, bytes: parts.bigBytes, sha256: parts.bigSha256, etag, manifest, storedAt: new Date().toISOString() }, temp.path)
      } catch (e) {
        ctx.log.warn({ folder, filename, code: (e as NodeJS.ErrnoException).code }, 'upload stored upstream but not in the local cache')
      }
      clock.mark('cache')
      ctx.log.info({ folder, filename, bytes, ms: clock.ms }, 'upload')
      return json({ filename, folder, bytes, smallBytes: parts.small.length, bigBytes: parts.bigBytes, sha256 } satisfies v.InferOutput<typeof UploadAnswer>, 201)
    }
  },
})
