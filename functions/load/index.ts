// F2: POST /load/:filename — the decrypted resource, from the API's small part and the cached big part.
import { createHash } from 'node:crypto'
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'
import { JSON_BODY_PROBLEMS, readJson } from '../../shared/http/json'
import { checkFilename, checkFolder, FilenameParam, FolderParam } from '../../shared/http/names'
import { requireSession } from '../../shared/http/require-session'
import { mayLoad } from '../../shared/upstream/roles'
import { getResourceFile, withAuth } from '../../shared/upstream/resource-api'
import { apiAesKey, fingerprint } from '../../shared/crypto/keys'
import { decryptBuffer } from '../../shared/crypto/blob'
import { isBlobError } from '../../shared/crypto/errors'
import { ensureBigPart } from './big-part'
import { openResource } from './resource-stream'
import { toWebStream } from './web-stream'
import { fetchManifest } from './manifest'
import { UPSTREAM_PROBLEMS } from '../../shared/upstream/errors'

const LoadBody = v.object({ folder: v.optional(v.string('must be a string')) })

export default defineFunction({
  name: 'load',
  routes: [{ method: 'POST', path: '/load/:filename', transfer: true, doc: {
    summary: 'The decrypted resource, streamed: small part from the Resource API (the licence check), big part from the cache or the CDN',
    params: { filename: FilenameParam },
    query: { folder: FolderParam },
    body: { 'application/json': LoadBody },
    answers: { 200: { description: 'the decrypted resource, with an exact Content-Length', content: { 'application/octet-stream': 'binary' },
      headers: { 'content-disposition': 'attachment; filename="<filename>"', 'x-content-sha256': 'SHA-256 of the plaintext, when the resource has a manifest' } } },
    problems: { ...JSON_BODY_PROBLEMS, ...UPSTREAM_PROBLEMS,
      401: 'not logged in (POST /login first)', 403: 'the role may not load, or the Resource API refuses this device',
      404: 'the Resource API has no such resource', 422: 'invalid filename, folder or body field',
      502: 'the parts do not belong together, fail their integrity check or do not decrypt; or an upstream failed',
      503: 'RESOURCE_API_URL is not configured, or MAX_CONCURRENT_TRANSFERS are running', 507: 'the device disk is full' },
  } }],
  async fetch(request, env, ctx) {
    const filename = checkFilename(ctx.params.filename)
    const body = await readJson(request, LoadBody, true)
    const folder = checkFolder(body.folder ?? new URL(request.url).searchParams.get('folder'))
    const { auth, cdn } = await requireSession(env, mayLoad, 'load resources')

    // 1. The small part: the licence check, made on every load.
    const hardware = await fingerprint(env)
    const blob = await withAuth(env, `${folder}/${filename}`, (token, a) => getResourceFile(env, token, folder, `${filename}.small`, a.password, hardware), auth)
    let small: Buffer
    try {
      small = decryptBuffer(await apiAesKey(env, auth.email, auth.password), blob)
    } catch (e) {
      if (isBlobError(e)) throw new HttpError(502, `the small part of ${folder}/${filename} does not decrypt with this device's key`, { type: 'decrypt-failed' })
      throw e
    }
    const smallSha = createHash('sha256').update(small).digest('hex')

    // 2. The big part, from the cache or the CDN; 3–4. checked, then streamed.
    const held = await ensureBigPart(env, cdn, folder, filename, { sha256: smallSha, bytes: small.length },
      () => fetchManifest(env, auth, hardware, folder, filename))
    const { record } = held
    const { stream, bytes } = await openResource(env, held, folder, filename, small)
    ctx.log.info({ folder, filename, bytes }, 'load')
    return new Response(toWebStream(stream), {
      status: 200,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(bytes),
        'content-disposition': `attachment; filename="${filename}"`,
        'cache-control': 'no-store',
        ...(record.manifest ? { 'x-content-sha256': record.manifest.sha256Plain } : {}),
      },
    })
  },
})
