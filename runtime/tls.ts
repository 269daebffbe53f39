// An HTTPS listener's certificates (runtime/tls-files.ts reads them): served from start, re-read on
// SIGHUP, when the files change and every minute, applied without a restart; a changed client CA
// ends the keep-alive connections it verified; refused handshakes are logged, bounded.
import { createHash } from 'node:crypto'
import { lstatSync, readlinkSync, realpathSync, watch, type FSWatcher } from 'node:fs'
import type { Server as HttpServer } from 'node:http'
import type { ServerOptions } from 'node:https'
import type { Socket } from 'node:net'
import { basename, dirname, resolve } from 'node:path'
import type { Server as TlsServer, TLSSocket } from 'node:tls'
import { readTls, type TlsFiles, type TlsMaterial } from './tls-files'
import type { Logger } from '../shared/contract/logger'

export type { TlsFiles, TlsMaterial } from './tls-files'

/** An HTTPS listener's certificates, kept current. */
export interface TlsListener {
  /** node:https server options: TLS ≥ 1.2, no renegotiation; with a client CA, a certificate signed by it is required. */
  options: ServerOptions
  /** The certificate in use. */
  current(): TlsMaterial
  /**
   * Serves the certificates on `server` now and after every successful reload; logs its refused
   * handshakes (at most one line per client address a minute) and, when the client CA changes,
   * closes the connections verified by the old one (idle ones at once, busy ones after their response).
   */
  attach(server: TlsServer): void
  /**
   * Re-reads the files. A changed, valid set is applied to new handshakes (connections already
   * open keep theirs); a broken one is logged and the old one stays. True when applied.
   */
  reload(): boolean
  /**
   * Reloads when a watched file changes: the folder of each path and the folder of the file it
   * resolves to (symlinks), watched again after each applied reload; and re-reads every
   * `pollMs` (60 s) whatever the watchers saw. Events are debounced (`debounceMs` after the first).
   */
  watch(opts?: { debounceMs?: number; pollMs?: number }): void
  close(): void
}

/** Names Kubernetes swaps in a mounted Secret's folder (`..data` → `..<timestamp>`). */
const K8S_NAMES = ['..data', '..data_tmp']
const LOG_EVERY_MS = 60_000

/**
 * Folder → the names in it whose change matters: for each path, its folder, the folder of every
 * symlink it goes through (certbot: etc/tls.crt → ../live/cert.pem → ../archive/cert1.pem) and
 * the folder of the file it resolves to. A swapped symlinked *folder* is not seen here (its parent
 * is not watched): SIGHUP or the periodic re-read picks it up.
 */
export function watchTargets(paths: string[]): Map<string, Set<string>> {
  const targets = new Map<string, Set<string>>()
  const add = (p: string) => {
    const dir = dirname(p)
    if (!targets.has(dir)) targets.set(dir, new Set(K8S_NAMES))
    targets.get(dir)!.add(basename(p))
  }
  for (const p of paths) {
    add(p)
    let hop = resolve(p)
    for (let i = 0; i < 8; i++) {
      try {
        if (!lstatSync(hop).isSymbolicLink()) break
        hop = resolve(dirname(hop), readlinkSync(hop))
        add(hop)
      } catch { break /* missing now: the next reload says so */ }
    }
    try {
      add(realpathSync(p))
    } catch { /* missing now */ }
  }
  return targets
}

/** Reads the files once (throws ConfigError when they are unusable) and returns the listener. */
export function createTlsListener(files: TlsFiles, log: Logger): TlsListener {
  let material = readTls(files)
  const digest = (m: TlsMaterial) => createHash('sha256').update(JSON.stringify(m.context)).digest('hex')
  let applied = digest(material)
  const servers: TlsServer[] = []
  const watchers: FSWatcher[] = []
  let timer: NodeJS.Timeout | undefined
  let poll: NodeJS.Timeout | undefined
  let watching: { debounceMs: number } | undefined
  const mutual = Boolean(files.clientCa)
  // Connections are stamped with the client CA generation of their handshake.
  let caGeneration = 0
  const generation = new WeakMap<Socket, number>()
  const refusedLogged = new Map<string, { at: number; suppressed: number }>()
  const addresses = new WeakMap<Socket, string>()
  let warned = ''
  const warnAbout = (m: TlsMaterial) => {
    const text = m.warnings.join('\n')
    if (text && text !== warned) for (const w of m.warnings) log.warn({ subject: m.subject, validFrom: m.validFrom, validTo: m.validTo }, w)
    warned = text
  }
  warnAbout(material)
  let lastProblem = ''

  const refused = (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const parent = (socket as unknown as { _parent?: Socket })._parent
    const client = socket.remoteAddress ?? (parent && addresses.get(parent)) ?? parent?.remoteAddress ?? 'unknown'
    const reason = socket.authorizationError ?? err.code ?? 'error'
    const now = Date.now()
    const seen = refusedLogged.get(client)
    if (seen && now - seen.at < LOG_EVERY_MS) {
      seen.suppressed++
      return
    }
    if (refusedLogged.size >= 1000) {
      for (const [k, v] of refusedLogged) if (now - v.at >= LOG_EVERY_MS) refusedLogged.delete(k)
      if (refusedLogged.size >= 1000) refusedLogged.clear()
    }
    refusedLogged.set(client, { at: now, suppressed: 0 })
    log.info({ client, reason, ...(seen?.suppressed ? { suppressedLastMinute: seen.suppressed } : {}) }, 'TLS handshake refused')
  }

  const rewatch = () => {
    for (const w of watchers.splice(0)) w.close()
    if (!watching) return
    const { debounceMs } = watching
    const paths = [files.cert, files.key, files.clientCa].filter((p): p is string => Boolean(p))
    for (const [dir, names] of watchTargets(paths)) {
      try {
        const w = watch(dir, (_event, name) => {
          // Another file of the folder (a log written every few ms) neither triggers nor postpones a
          // reload; the folder's own name is a rename or deletion of it: watch the paths again.
          if (name !== null && !names.has(String(name)) && String(name) !== basename(dir)) return
          // The first relevant event starts the wait; later ones do not prolong it.
          timer ??= setTimeout(() => {
            timer = undefined
            if (!listener.reload()) rewatch()
          }, debounceMs)
        })
        // The folder itself went away (a deleted symlink target): watch what the paths resolve to now.
        w.on('error', (e) => {
          log.warn({ dir, err: String(e) }, 'a watched TLS folder failed: watching the paths again')
          setTimeout(() => { if (watching) rewatch() }, debounceMs).unref()
        })
        watchers.push(w)
      } catch (e) {
        log.warn({ dir, err: String(e) }, 'cannot watch a TLS folder: it is re-read on SIGHUP and every minute')
      }
    }
  }

  const reload = (quiet: boolean): boolean => {
    let next: TlsMaterial
    try {
      next = readTls(files)
    } catch (e) {
      const problem = (e as Error).message
      if (!quiet || problem !== lastProblem) log.warn({ problem }, 'TLS certificates not reloaded: keeping the ones in use')
      lastProblem = problem
      return false
    }
    lastProblem = ''
    warnAbout(next)
    const d = digest(next)
    if (d === applied) return false
    const caChanged = next.context.ca !== material.context.ca
    for (const s of servers) s.setSecureContext(next.context)
    material = next
    applied = d
    log.info({ subject: next.subject, validTo: next.validTo, fingerprint256: next.fingerprint256, clientCaChanged: caChanged }, 'TLS certificates reloaded')
    if (caChanged) {
      // Callers verified by the old CA may no longer be allowed: they must handshake again.
      caGeneration++
      for (const s of servers) (s as unknown as HttpServer).closeIdleConnections?.()
    }
    rewatch()
    return true
  }

  const listener: TlsListener = {
    options: { ...material.context, requestCert: mutual, rejectUnauthorized: mutual },
    current: () => material,
    attach(server) {
      servers.push(server)
      server.on('connection', (socket: Socket) => {
        if (socket.remoteAddress) addresses.set(socket, socket.remoteAddress)
      })
      server.on('secureConnection', (socket: TLSSocket) => generation.set(socket, caGeneration))
      server.on('tlsClientError', refused)
      server.prependListener('request', (req: { socket: Socket }, res: import('node:http').ServerResponse) => {
        const stale = () => (generation.get(req.socket) ?? caGeneration) < caGeneration
        if (stale()) res.setHeader('connection', 'close')
        else res.once('finish', () => { if (stale()) req.socket.end() })
      })
    },
    reload: () => reload(false),
    watch({ debounceMs = 250, pollMs = 60_000 } = {}) {
      watching = { debounceMs }
      rewatch()
      clearInterval(poll)
      // The safety net for changes no watcher sees (a swapped symlinked folder's parent, network file systems).
      poll = setInterval(() => reload(true), pollMs)
      poll.unref()
    },
    close() {
      watching = undefined
      clearTimeout(timer)
      timer = undefined
      clearInterval(poll)
      for (const w of watchers.splice(0)) w.close()
    },
  }
  return listener
}
