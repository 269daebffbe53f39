// Certificates of an HTTPS listener (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE): read and
// checked at start, re-read on SIGHUP or when the files change, applied without a restart.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import type { ServerOptions } from 'node:https'
import { dirname } from 'node:path'
import { createSecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls'
import { ConfigError } from './config'
import type { Logger } from '../shared/contract/logger'

/** Paths of a listener's PEM files, and the variables that name them (for error lines). */
export interface TlsFiles {
  cert: string
  key: string
  /** CA whose certificates callers must present (mutual TLS). */
  clientCa?: string
  /** Variable names used in messages; defaults TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE. */
  names?: { cert: string; key: string; clientCa: string }
}

/** What was read: the secure-context options and a description of the certificate. */
export interface TlsMaterial {
  context: SecureContextOptions
  subject: string
  validTo: string
  fingerprint256: string
}

const NAMES = { cert: 'TLS_CERT_FILE', key: 'TLS_KEY_FILE', clientCa: 'TLS_CLIENT_CA_FILE' }
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

function read(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    throw new ConfigError(variable, `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

/** Every certificate of a PEM file, parsed; at least one. */
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
 * Reads and checks a certificate chain, its private key and an optional client CA: each must
 * parse and the key must match the first certificate. Throws ConfigError naming the variable.
 */
export function readTls(files: TlsFiles): TlsMaterial {
  const names = files.names ?? NAMES
  const { pem: cert, certs } = readCertificates(names.cert, files.cert)
  const key = read(names.key, files.key)
  let keyObject
  try {
    keyObject = createPrivateKey(key)
  } catch {
    throw new ConfigError(names.key, `${files.key} holds no unencrypted PEM private key`)
  }
  if (!certs[0].checkPrivateKey(keyObject)) {
    throw new ConfigError(names.key, `${files.key} does not match the certificate in ${names.cert} (${files.cert})`)
  }
  const ca = files.clientCa ? readCertificates(names.clientCa, files.clientCa).pem : undefined
  const context: SecureContextOptions = { cert, key, ...(ca ? { ca } : {}), minVersion: 'TLSv1.2' }
  try {
    createSecureContext(context)
  } catch (e) {
    throw new ConfigError(names.cert, `OpenSSL refuses the pair (${(e as Error).message})`)
  }
  return { context, subject: certs[0].subject.replace(/\n/g, ', '), validTo: certs[0].validTo, fingerprint256: certs[0].fingerprint256 }
}

/** An HTTPS listener's certificates, kept current. */
export interface TlsListener {
  /** node:https server options: TLS ≥ 1.2; with a client CA, a certificate signed by it is required. */
  options: ServerOptions
  /** The certificate in use. */
  current(): TlsMaterial
  /** Serves the certificates on `server` now and after every successful reload. */
  attach(server: TlsServer): void
  /**
   * Re-reads the files. A changed, valid set is applied to new handshakes (connections already
   * open keep theirs); a broken one is logged and the old one stays. True when applied.
   */
  reload(): boolean
  /** Reloads when a file changes (its folder is watched, so renames and symlink swaps count); debounced. */
  watch(debounceMs?: number): void
  close(): void
}

/** Reads the files once (throws ConfigError when they are unusable) and returns the listener. */
export function createTlsListener(files: TlsFiles, log: Logger): TlsListener {
  let material = readTls(files)
  const digest = (m: TlsMaterial) => createHash('sha256').update(JSON.stringify(m.context)).digest('hex')
  let applied = digest(material)
  const servers: TlsServer[] = []
  const watchers: FSWatcher[] = []
  let timer: NodeJS.Timeout | undefined
  const mutual = Boolean(files.clientCa)
  if (Date.parse(material.validTo) < Date.now()) log.warn({ subject: material.subject, validTo: material.validTo }, 'the TLS certificate has expired')

  const listener: TlsListener = {
    options: { ...material.context, requestCert: mutual, rejectUnauthorized: mutual },
    current: () => material,
    attach(server) {
      servers.push(server)
    },
    reload() {
      let next: TlsMaterial
      try {
        next = readTls(files)
      } catch (e) {
        log.warn({ problem: (e as Error).message }, 'TLS certificates not reloaded: keeping the ones in use')
        return false
      }
      const d = digest(next)
      if (d === applied) return false
      for (const s of servers) s.setSecureContext(next.context)
      material = next
      applied = d
      log.info({ subject: next.subject, validTo: next.validTo, fingerprint256: next.fingerprint256 }, 'TLS certificates reloaded')
      return true
    },
    watch(debounceMs = 250) {
      const paths = [files.cert, files.key, files.clientCa].filter((p): p is string => Boolean(p))
      for (const dir of new Set(paths.map((p) => dirname(p)))) {
        try {
          const w = watch(dir, () => {
            clearTimeout(timer)
            timer = setTimeout(() => listener.reload(), debounceMs)
          })
          w.on('error', (e) => log.warn({ dir, err: String(e) }, 'cannot watch the TLS files: they are re-read on SIGHUP only'))
          watchers.push(w)
        } catch (e) {
          log.warn({ dir, err: String(e) }, 'cannot watch the TLS files: they are re-read on SIGHUP only')
        }
      }
    },
    close() {
      clearTimeout(timer)
      for (const w of watchers.splice(0)) w.close()
    },
  }
  return listener
}
