// The caller's verified client certificate (mutual TLS), as node:https reports it on the socket.
import { X509Certificate } from 'node:crypto'
import type { Context } from 'hono'
import type { TLSSocket } from 'node:tls'
import type { NodeBindings } from './client-address'

const subjects = new WeakMap<TLSSocket, string>()

/**
 * The subject (`CN=…, O=…`) of the certificate the caller presented, when the TLS handshake
 * verified it against TLS_CLIENT_CA_FILE; undefined on plain HTTP or without a verified one.
 */
export function clientCertificateSubject(c: Context): string | undefined {
  const socket = (c.env as NodeBindings | undefined)?.incoming?.socket as TLSSocket | undefined
  if (!socket || typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return undefined
  let subject = subjects.get(socket)
  if (subject === undefined) {
    const raw = socket.getPeerCertificate()?.raw
    if (!raw) return undefined
    subject = new X509Certificate(raw).subject.replace(/\n/g, ', ')
    subjects.set(socket, subject)
  }
  return subject
}
