// MSW handlers for the S3-compatible CDN: in-memory objects, Range, If-Match, x-amz-meta; checks a SigV4 header is present.
import { http, HttpResponse } from 'msw'
import { createHash } from 'node:crypto'

export const CDN = 'http://cdn.test'

export interface CdnObject { body: Buffer; meta: Record<string, string>; etag: string }

/** An in-memory CDN and its handlers. */
export function cdn() {
  const objects = new Map<string, CdnObject>()
  const calls: { method: string; key: string; range?: string; auth?: string }[] = []
  const key = (p: { bucket?: string | readonly string[]; key?: string | readonly string[] }) => `${p.bucket}/${p.key}`
  const put = (k: string, body: Buffer, meta: Record<string, string> = {}) =>
    objects.set(k, { body, meta, etag: `"${createHash('md5').update(body).digest('hex')}"` })

  const handlers = [
    http.put(`${CDN}/:bucket/:key`, async ({ request, params }) => {
      calls.push({ method: 'PUT', key: key(params), auth: request.headers.get('authorization') ?? undefined })
      if (!request.headers.get('authorization')?.startsWith('AWS4-HMAC-SHA256 ')) return new HttpResponse(null, { status: 403 })
      const meta: Record<string, string> = {}
      request.headers.forEach((v, k) => { if (k.startsWith('x-amz-meta-')) meta[k] = v })
      put(key(params), Buffer.from(await request.arrayBuffer()), meta)
      return new HttpResponse(null, { status: 200, headers: { etag: objects.get(key(params))!.etag } })
    }),
    http.get(`${CDN}/:bucket/:key`, ({ request, params }) => {
      const range = request.headers.get('range') ?? undefined
      calls.push({ method: 'GET', key: key(params), range, auth: request.headers.get('authorization') ?? undefined })
      if (!request.headers.get('authorization')?.startsWith('AWS4-HMAC-SHA256 ')) return new HttpResponse(null, { status: 403 })
      const o = objects.get(key(params))
      if (!o) return new HttpResponse('<Error><Code>NoSuchKey</Code></Error>', { status: 404 })
      const ifMatch = request.headers.get('if-match')
      if (ifMatch && ifMatch !== o.etag) return new HttpResponse(null, { status: 412 })
      const headers = { etag: o.etag, ...o.meta }
      if (range) {
        const start = Number(/bytes=(\d+)-/.exec(range)![1])
        if (start >= o.body.length) return new HttpResponse(null, { status: 416, headers })
        return new HttpResponse(new Uint8Array(o.body.subarray(start)), { status: 206, headers: { ...headers, 'content-range': `bytes ${start}-${o.body.length - 1}/${o.body.length}` } })
      }
      return new HttpResponse(new Uint8Array(o.body), { status: 200, headers })
    }),
  ]
  return { objects, calls, handlers, put }
}

/**
 * A handler that answers only the first plain GET (no Range) of `key` with `answer()`: a first
 * attempt a test shapes (cut, tampered, without ETag); every later request falls through to the CDN.
 */
export function firstPlainGet(key: string, answer: () => Response) {
  let first = true
  return http.get(`${CDN}/${key}`, ({ request }) => {
    if (!first || request.headers.get('range')) return undefined
    first = false
    return answer()
  })
}
