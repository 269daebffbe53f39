// A small client of the admin surface over a unix socket (unix:///path.sock) or TLS (https://host:port).
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'

/** Where the admin surface is and how to authenticate. */
export interface AdminTarget { to: string; token?: string; ca?: string | Buffer }

/** One request to the admin surface; answers status, content type and body text. */
export function adminRequest(t: AdminTarget, method: string, path: string, body?: { type: string; bytes: Uint8Array; chunked?: boolean }): Promise<{ status: number; type: string; text: string }> {
  const headers: Record<string, string | number> = {}
  if (t.token) headers.authorization = `Bearer ${t.token}`
  if (body) Object.assign(headers, { 'content-type': body.type }, body.chunked ? {} : { 'content-length': body.bytes.length })
  return new Promise((ok, fail) => {
    const done = (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => ok({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', fail)
    }
    let req
    if (t.to.startsWith('unix://')) {
      req = httpRequest({ socketPath: t.to.slice('unix://'.length), path, method, headers }, done)
    } else if (t.to.startsWith('https://')) {
      const u = new URL(t.to)
      req = httpsRequest({ host: u.hostname, port: u.port || 443, path, method, headers, ca: t.ca, minVersion: 'TLSv1.2' }, done)
    } else {
      return fail(new Error(`--to must be unix:///path.sock or https://host:port, not ${t.to}`))
    }
    req.on('error', fail)
    if (body?.chunked) {
      // Without a declared length (transfer-encoding: chunked), in 16 KiB pieces.
      for (let i = 0; i < body.bytes.length; i += 16384) req.write(Buffer.from(body.bytes.subarray(i, i + 16384)))
      req.end()
    } else {
      req.end(body ? Buffer.from(body.bytes) : undefined)
    }
  })
}

/** A multipart/form-data body of named parts. */
export async function multipart(parts: [name: string, bytes: Uint8Array][]): Promise<{ type: string; bytes: Uint8Array }> {
  const form = new FormData()
  for (const [name, bytes] of parts) form.append(name, new Blob([new Uint8Array(bytes)]), name)
  const res = new Response(form)
  return { type: res.headers.get('content-type')!, bytes: new Uint8Array(await res.arrayBuffer()) }
}
