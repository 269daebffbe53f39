// The caller's verified client certificate (mutual TLS), as node:https reports it on the socket:
// a helper of the middleware, like client-address.ts.
import { X509Certificate } from 'node:crypto'
import type { Context } from 'hono'
import type { TLSSocket } from 'node:tls'
import type { NodeBindings } from './client-address'

/**
 * The subject (`CN=…, O=…`) of the certificate the caller presented, when the TLS handshake
 * verified it against TLS_CLIENT_CA_FILE; undefined on plain HTTP, without a verified one, or once
 * the socket is gone (read it before the request runs).
 */
export function clientCertificateSubject(c: Context): string | undefined {
  const socket = (c.env as NodeBindings | undefined)?.incoming?.socket as TLSSocket | undefined
  if (!socket || typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return undefined
  const raw = socket.getPeerCertificate()?.raw
  return raw ? new X509Certificate(raw).subject.replace(/\n/g, ', ') : undefined
}
