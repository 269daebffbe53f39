// Certificates made with the openssl command line (a CA, server and client certificates), a TLS
// terminating proxy, and an HTTPS client that reports the certificate it was served.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { createServer as createHttpsServer, request as httpsRequest, type RequestOptions, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as netConnect } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'

/** Paths of a PEM pair, and their texts. */
export interface Pair { cert: string; key: string; certPem: string; keyPem: string }

/** A certificate authority made by openssl in its own temp folder. */
export interface Ca extends Pair {
  dir: string
  /** Issues a certificate: `server` for 127.0.0.1/localhost, `client` for mutual TLS; `days: -1` makes an expired one. */
  issue(name: string, kind: 'server' | 'client', cn?: string, days?: number): Pair
  remove(): void
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
const pair = (dir: string, name: string): Pair => ({
  cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`),
  certPem: readFileSync(join(dir, `${name}.pem`), 'utf8'), keyPem: readFileSync(join(dir, `${name}.key`), 'utf8'),
})

/** Makes a CA (EC P-256, valid two days) with `openssl req -x509`. */
export function makeCa(cn = 'Loader Test CA'): Ca {
  const dir = mkdtempSync(join(tmpdir(), 'loader-tls-'))
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', `/O=Loader Tests/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  return {
    dir, ...pair(dir, 'ca'),
    issue(name, kind, cn = kind === 'server' ? '127.0.0.1' : name, days = 2) {
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`,
        '-subj', `/O=Loader Tests/CN=${cn}`], dir)
      writeFileSync(join(dir, `${name}.ext`), [
        'basicConstraints=CA:FALSE',
        kind === 'server' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost' : '',
        `extendedKeyUsage=${kind === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ].filter(Boolean).join('\n') + '\n')
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`,
        '-days', String(days), '-out', `${name}.pem`, '-extfile', `${name}.ext`], dir)
      return pair(dir, name)
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** `openssl x509 -fingerprint -sha256` of a PEM file, as node prints fingerprint256 (AA:BB:…). */
export const fingerprintOf = (certFile: string) =>
  execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim().replace(/^.*=/, '')

/** A TLS terminating proxy: HTTPS on loopback with `server`, forwarding to the plain `target`, Host kept (SigV4 signs it). */
export async function startTlsProxy(target: string, server: Pair): Promise<{ url: string; close(): void }> {
  const t = new URL(target)
  const s: Server = createHttpsServer({ cert: server.certPem, key: server.keyPem }, (req, res) => {
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers)
      ur.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return { url: `https://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => { s.closeAllConnections(); s.close() } }
}

/**
 * A TCP TLS front for a unix socket (dockerd --tlsverify in front of an engine): callers must
 * present a certificate signed by `clientCa`. Returns `tcp://127.0.0.1:<port>`.
 */
export async function startTlsSocketProxy(socketPath: string, server: Pair, clientCa: string): Promise<{ tcp: string; close(): void }> {
  const s = createTlsServer({ cert: server.certPem, key: server.keyPem, ca: clientCa, requestCert: true, rejectUnauthorized: true }, (tls) => {
    const up = netConnect(socketPath)
    tls.pipe(up).pipe(tls)
    tls.once('error', () => up.destroy())
    up.once('error', () => tls.destroy())
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return { tcp: `tcp://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => s.close() }
}

/** TLS options of a test client: the CA it trusts and, for mutual TLS, its certificate. */
export type ClientTls = Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'minVersion' | 'maxVersion' | 'ciphers'>

/** The answer of `httpsFetch`, with the fingerprint of the certificate the server presented. */
export interface HttpsAnswer { status: number; headers: IncomingHttpHeaders; body: Buffer; fingerprint256: string; protocol: string | null }

/** One HTTPS request on a fresh connection (no keep-alive), its body read whole. */
export function httpsFetch(url: string, tls: ClientTls, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpsAnswer> {
  return new Promise((ok, fail) => {
    const req = httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers, agent: false, ...tls }, (res) => {
      const socket = res.socket as TLSSocket
      const fingerprint256 = socket.getPeerCertificate().fingerprint256
      const protocol = socket.getProtocol()
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.once('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), fingerprint256, protocol }))
      res.once('error', fail)
    })
    req.once('error', fail)
    req.end(init.body)
  })
}
