// PEM files of a TLS endpoint (a listener's TLS_CERT_FILE / TLS_KEY_FILE / TLS_CLIENT_CA_FILE, the
// engine's DOCKER_CERT_PATH): read, parsed and checked, with errors naming the variable.
import { constants, createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { ConfigError } from './config'

/** Paths of a listener's PEM files. */
export interface TlsFiles {
  cert: string
  key: string
  /** CA whose certificates callers must present (mutual TLS). */
  clientCa?: string
}

/** What was read: the secure-context options and a description of the certificate. */
export interface TlsMaterial {
  context: SecureContextOptions
  subject: string
  validFrom: string
  validTo: string
  fingerprint256: string
  /** Problems that do not stop a start or a reload (an expired certificate, a client CA that is no CA). */
  warnings: string[]
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

function read(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    throw new ConfigError(variable, `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

/** Every certificate of a PEM file, parsed; at least one. `variable` names the file in errors. */
export function readCertificates(variable: string, path: string): { pem: string; certs: X509Certificate[] } {
  const pem = read(variable, path)
  const blocks = pem.match(PEM_CERT) ?? []
  if (!blocks.length) throw new ConfigError(variable, `${path} holds no PEM certificate`)
  try {
    return { pem, certs: blocks.map((b) => new X509Certificate(b)) }
  } catch {
    throw new ConfigError(variable, `${path} holds a certificate that does not parse`)
  }
}

/**
 * A certificate chain and its private key: both must parse and the key must match the first
 * certificate. `label` names both files in errors (default TLS_CERT_FILE / TLS_KEY_FILE).
 */
export function readKeyPair(paths: { cert: string; key: string }, label?: string): { cert: string; key: string; leaf: X509Certificate } {
  const names = { cert: label ?? 'TLS_CERT_FILE', key: label ?? 'TLS_KEY_FILE' }
  const { pem: cert, certs } = readCertificates(names.cert, paths.cert)
  const key = read(names.key, paths.key)
  let keyObject
  try {
    keyObject = createPrivateKey(key)
  } catch {
    throw new ConfigError(names.key, `${paths.key} holds no unencrypted PEM private key`)
  }
  if (!certs[0].checkPrivateKey(keyObject)) {
    throw new ConfigError(names.key, `${paths.key} does not match the certificate in ${names.cert} (${paths.cert})`)
  }
  return { cert, key, leaf: certs[0] }
}

/** Why a certificate cannot be used now (expired, not yet valid), or undefined. */
export function validityProblem(cert: X509Certificate, now = Date.now()): string | undefined {
  if (Date.parse(cert.validTo) < now) return `has expired (${cert.validTo})`
  if (Date.parse(cert.validFrom) > now) return `is not valid before ${cert.validFrom}`
  return undefined
}

/**
 * Reads and checks a listener's files: the pair (readKeyPair) and an optional client CA. The
 * context serves TLS ≥ 1.2 without renegotiation. Throws ConfigError naming the variable.
 */
export function readTls(files: TlsFiles): TlsMaterial {
  const { cert, key, leaf } = readKeyPair(files)
  const warnings: string[] = []
  const expiry = validityProblem(leaf)
  if (expiry) warnings.push(`TLS_CERT_FILE: the certificate ${expiry}`)
  let ca: string | undefined
  if (files.clientCa) {
    const read = readCertificates('TLS_CLIENT_CA_FILE', files.clientCa)
    ca = read.pem
    if (!read.certs.some((c) => c.ca)) {
      warnings.push(`TLS_CLIENT_CA_FILE: ${files.clientCa} holds no CA certificate (basicConstraints CA:TRUE): client certificates will not verify against it`)
    }
  }
  const context: SecureContextOptions = { cert, key, ...(ca ? { ca } : {}), minVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_RENEGOTIATION }
  try {
    createSecureContext(context)
  } catch (e) {
    throw new ConfigError('TLS_CERT_FILE', `OpenSSL refuses the pair (${(e as Error).message})`)
  }
  return { context, subject: leaf.subject.replace(/\n/g, ', '), validFrom: leaf.validFrom, validTo: leaf.validTo, fingerprint256: leaf.fingerprint256, warnings }
}
