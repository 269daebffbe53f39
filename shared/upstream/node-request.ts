// A minimal streaming HTTP request over node:http(s) or a unix socket: exact Content-Length, backpressure.
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import https from 'node:https'
import type { Readable } from 'node:stream'

/** Options of one request. */
export interface NodeRequest {
  method: string
  url: string
  headers?: OutgoingHttpHeaders
  body?: Readable | Buffer | string
  /** Unix socket path (Docker engine); `url` then supplies only the path. */
  socketPath?: string
  /**
   * Time allowed for the answer's headers once the request body has been sent, and for any
   * pause of the connection (a stalled body in either direction).
   */
  timeoutMs?: number
  signal?: AbortSignal
  /**
   * TLS material for an https URL: `ca` replaces the default trust store (Docker's ca.pem), `cert`
   * and `key` are a client certificate. Without it the default store, with NODE_EXTRA_CA_CERTS, applies.
   */
  tls?: { ca?: string; cert?: string; key?: string }
}

/** A timeout waiting for an upstream answer (mapped to 504). */
export class UpstreamTimeoutError extends Error {
  override name = 'TimeoutError'
}

/** Sends a request and resolves with the response once its headers arrive (the body streams). */
export function nodeRequest(opts: NodeRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const url = new URL(opts.url)
    // Looked up at call time (not a named import), so instrumentation of the module object applies.
    const req = (url.protocol === 'https:' ? https : http).request(url, { method: opts.method, headers: opts.headers, socketPath: opts.socketPath, signal: opts.signal, ...opts.tls })
    let timer: NodeJS.Timeout | undefined
    let response: IncomingMessage | undefined
    if (opts.timeoutMs) {
      const ms = opts.timeoutMs
      // A large PUT takes as long as its body; the clock for the answer starts when the body is sent.
      req.once('finish', () => {
        timer = setTimeout(() => req.destroy(new UpstreamTimeoutError(`no answer within ${ms} ms`)), ms)
      })
      req.setTimeout(ms, () => {
        const e = new UpstreamTimeoutError(`the connection was idle for ${ms} ms`)
        // Once the body streams, the response must fail with the timeout itself: destroying the
        // request alone makes it fail with "aborted", and a stall would map to 502, not 504.
        // The request (and its socket) is closed first without an error of its own, then the answer
        // fails with the timeout: the socket never carries a second copy of the error, which nobody
        // listens for once the answer has failed (MSW's socket, which the unit tests use, throws it).
        if (response && !response.complete) {
          req.destroy()
          response.destroy(e)
        } else req.destroy(e)
      })
    }
    req.once('response', (res) => {
      clearTimeout(timer)
      response = res
      resolve(res)
    })
    req.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    const body = opts.body
    if (body === undefined) req.end()
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body)
    else {
      body.once('error', (e) => req.destroy(e))
      body.pipe(req)
    }
  })
}

/** Reads a (small) response body as text, at most `limit` bytes. */
export async function readBodyText(res: IncomingMessage, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of res) {
    n += (c as Buffer).length
    if (n > limit) {
      res.destroy()
      break
    }
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
