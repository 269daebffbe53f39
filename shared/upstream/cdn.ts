// The S3-compatible CDN (http.md §2.3): SigV4 by aws4fetch, streamed over node:http, path-style.
import { AwsClient } from 'aws4fetch'
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import type { Env } from '../contract/function'
import { HttpError } from '../contract/http-error'
import { nodeRequest } from './node-request'
import type { CdnSettings } from './session'

/** SigV4 timestamp of the corrected clock. */
const amzDate = (d: Date) => d.toISOString().replace(/[:-]|\.\d{3}/g, '')

/** URL of the big part of `filename` in `folder` (bucket = folder). */
export const bigPartUrl = (cdn: CdnSettings, folder: string, filename: string) =>
  `${cdn.host}/${encodeURIComponent(folder)}/${encodeURIComponent(filename)}.big`

/** A signed request to the CDN with the downloader (read) or uploader (write) keys. */
export async function cdnRequest(env: Env, cdn: CdnSettings, mode: 'read' | 'write', init: {
  method: 'GET' | 'HEAD' | 'PUT'
  url: string
  headers?: Record<string, string>
  body?: Readable
}): Promise<IncomingMessage> {
  const [accessKeyId, secretAccessKey] = mode === 'read'
    ? [cdn.downloaderAccessKey, cdn.downloaderAccessSecret]
    : [cdn.uploaderAccessKey, cdn.uploaderAccessSecret]
  if (!accessKeyId || !secretAccessKey) throw new HttpError(403, 'this session has no CDN uploader keys: its role may not upload', { type: 'forbidden-role' })
  // aws4fetch retries 10 times by default; the loader decides retries itself (reads only).
  const aws = new AwsClient({ accessKeyId, secretAccessKey, service: 's3', region: cdn.region, retries: 0 })
  // The body is never handed to aws4fetch: X-Amz-Content-Sha256 (the hash or UNSIGNED-PAYLOAD) stands for it.
  const headers = { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...init.headers }
  const signed = await aws.sign(init.url, { method: init.method, headers, aws: { datetime: amzDate(env.clock.now()) } })
  const res = await nodeRequest({
    method: init.method, url: signed.url, headers: Object.fromEntries(signed.headers), body: init.body, timeoutMs: env.config.CDN_TIMEOUT_MS,
  })
  env.clock.observe(res.headers.date)
  return res
}

/** Maps a CDN status that is not a success to the problem the caller sees. */
export function cdnStatusProblem(status: number, what: string): HttpError {
  if (status === 403) return new HttpError(502, `the CDN refused the ${what}: its keys or signature were not accepted (wrong secret or clock?)`, { type: 'cdn-refused', extra: { upstreamStatus: status } })
  if (status === 404) return new HttpError(502, `the CDN has no object for the ${what}`, { type: 'cdn-missing', extra: { upstreamStatus: status } })
  return new HttpError(502, `the CDN answered ${status} to the ${what}`, { type: 'upstream-error', extra: { upstreamStatus: status } })
}
