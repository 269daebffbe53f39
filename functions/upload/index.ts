// F3: POST /upload/:filename — encrypt, split, big part to CDN and cache, small part to the API last.
import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { defineFunction } from '../../shared/contract/function'
import { HttpError, isHttpError } from '../../shared/contract/http-error'
import { json } from '../../shared/http/json'
import { checkFilename, checkFolder } from '../../shared/http/names'
import { requireSession } from '../../shared/http/require-session'
import { mayUpload } from '../../shared/upstream/roles'
import { createEncryptStream } from '../../shared/crypto/blob'
import { resourceAesKey } from '../../shared/crypto/keys'
import { SplitStream } from './split'
import { openUploadBody } from './body'
import { bigPartUrl, cdnRequest, cdnStatusProblem } from '../../shared/upstream/cdn'
import { putResourceFile, withAuth } from '../../shared/upstream/resource-api'
import { upstreamProblem } from '../../shared/upstream/errors'
import { encodeManifest, manifestName } from '../../shared/crypto/manifest'

const tooLarge = (max: number) => new HttpError(413, `the upload is larger than UPLOAD_MAX_BYTES (${max} bytes)`, { type: 'too-large' })

export default defineFunction({
  name: 'upload',
  routes: [{ method: 'POST', path: '/upload/:filename', body: 'stream', transfer: true }],
  async fetch(request, env, ctx) {
    const filename = checkFilename(ctx.params.filename)
    const queryFolder = new URL(request.url).searchParams.get('folder')
    if (queryFolder !== null) checkFolder(queryFolder)
    const { auth, cdn } = await requireSession(env, mayUpload, 'upload resources')
    if (!cdn.uploaderAccessKey) throw new HttpError(403, 'this session has no CDN uploader keys', { type: 'forbidden-role' })
    const max = env.config.UPLOAD_MAX_BYTES
    if (Number(request.headers.get('content-length') ?? 0) > max + 64 * 1024) throw tooLarge(max)

    const body = await openUploadBody(request)
    const temp = env.cache.temp('upload')
    try {
      // Plaintext → count and hash → encrypt → split (small part kept) → temporary file of the big part.
      let bytes = 0
      const plainHash = createHash('sha256')
      const meter = new Transform({
        readableHighWaterMark: 1 << 20,
        writableHighWaterMark: 1 << 20,
        transform(chunk: Buffer, _e, done) {
          bytes += chunk.length
          if (bytes > max) return done(tooLarge(max))
          plainHash.update(chunk)
          done(null, chunk)
        },
      })
      const split = new SplitStream()
      try {
        await pipeline(body.data, meter, createEncryptStream(resourceAesKey(env)), split, temp.write())
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw new HttpError(507, 'the device disk is full', { type: 'disk-full' })
        if (isHttpError(e)) throw e
        throw new HttpError(400, 'the upload body ended early or could not be read', { type: 'bad-body' })
      }
      const folder = checkFolder((await body.folder) ?? queryFolder)
      const parts = split.result()
      const sha256 = plainHash.digest('hex')

      // The big part first, with its exact length and both hashes; a consumed stream is never retried.
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
          body: temp.read(),
        })
      } catch (e) {
        throw upstreamProblem('the CDN', 'the big-part upload', e)
      }
      res.resume()
      if (res.statusCode !== 200) throw cdnStatusProblem(res.statusCode ?? 0, 'big-part upload')
      const etag = Array.isArray(res.headers.etag) ? res.headers.etag[0] : res.headers.etag

      // Then the manifest, anchoring integrity in the authenticated API (crypto.md §5b).
      const manifest = { v: 1 as const, bytes, blobBytes: parts.blobBytes, smallBytes: parts.small.length, sha256Big: parts.bigSha256, sha256Small: parts.smallSha256, sha256Plain: sha256, chunkBytes: parts.chunkBytes, chunks: parts.chunks }
      await withAuth(env, `${folder}/${manifestName(filename)}`, (token) => putResourceFile(env, token, folder, manifestName(filename), encodeManifest(manifest)), auth)

      // The small part last: it is the commit point.
      await withAuth(env, `${folder}/${filename}.small`, (token) => putResourceFile(env, token, folder, `${filename}.small`, parts.small), auth)

      await env.cache.commit(folder, filename, { smallSha256: parts.smallSha256, bytes: parts.bigBytes, sha256: parts.bigSha256, etag, manifest, storedAt: new Date().toISOString() }, temp.path)
      ctx.log.info({ folder, filename, bytes }, 'upload')
      return json({ filename, folder, bytes, smallBytes: parts.small.length, bigBytes: parts.bigBytes, sha256 }, 201)
    } finally {
      body.data.destroy()
      await temp.remove()
    }
  },
})
