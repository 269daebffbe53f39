// Transport security pieces in process: the TLS variables, the start-up checks, certificate reloads, DOCKER_CERT_PATH.
import { constants } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { Agent, createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../runtime/config'
import { securityWarnings } from '../../runtime/env'
import { createTlsListener, watchTargets } from '../../runtime/tls'
import { createDockerTls } from '../../runtime/bindings/docker-tls'
import { engineTarget } from '../../functions/unlock/engine'
import { engineMessage } from '../../functions/unlock/job'
import type { Logger } from '../../shared/contract/logger'
import { makeCa, type Ca, type Pair } from '../helpers/tls'
import { SALTS } from '../helpers/vectors'
import { makeApp } from '../helpers/env'
import statusFn from '../../functions/status/index'

let ca: Ca
let a: Pair
let b: Pair
let client: Pair
let other: Ca
let stranger: Pair
let expired: Pair
const dirs: string[] = []
beforeAll(() => {
  ca = makeCa()
  a = ca.issue('a', 'server')
  b = ca.issue('b', 'server')
  client = ca.issue('docker-client', 'client')
  expired = ca.issue('expired', 'server', undefined, -1)
  other = makeCa('Another CA')
  stranger = other.issue('stranger', 'client')
})
afterAll(() => {
  ca?.remove()
  other?.remove()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'loader-unit-tls-'))
  dirs.push(d)
  return d
}
const config = (vars: Record<string, string> = {}) => parseConfig({ ...SALTS, ...vars })

/** A logger that keeps its lines. */
function memoryLog() {
  const lines: { level: string; msg: string; obj: object }[] = []
  const at = (level: string) => (obj: object | string, msg?: string) => { lines.push({ level, msg: typeof obj === 'string' ? obj : msg ?? '', obj: typeof obj === 'string' ? {} : obj }) }
  const log = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), child: () => log } as unknown as Logger
  return { log, lines }
}

/** What attach() needs of a server: its events, and setSecureContext (recorded). */
const fakeServer = (applied: unknown[]) => Object.assign(new EventEmitter(), { setSecureContext: (o: unknown) => applied.push(o) }) as never
/** Polls until `check` holds, at most ~10 s. */
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 25))
  if (!check()) throw new Error(`never: ${what}`)
}

describe('TLS configuration', () => {
  it('names the missing half of a pair, and the certificate a client CA needs', () => {
    expect(() => config({ TLS_CERT_FILE: '/x.pem' })).toThrow(/^TLS_KEY_FILE: is required when TLS_CERT_FILE is set/)
    expect(() => config({ TLS_KEY_FILE: '/x.key' })).toThrow(/^TLS_CERT_FILE: is required when TLS_KEY_FILE is set/)
    expect(() => config({ TLS_CLIENT_CA_FILE: '/ca.pem' })).toThrow(/^TLS_CERT_FILE: is required when TLS_CLIENT_CA_FILE/)
    expect(config({ TLS_CERT_FILE: '/x.pem', TLS_KEY_FILE: '/x.key' })).toMatchObject({ TLS_CERT_FILE: '/x.pem', TLS_KEY_FILE: '/x.key' })
  })

  it('reads DOCKER_TLS_VERIFY as the Docker CLI does: any non-empty value turns it on', () => {
    expect(config().DOCKER_TLS_VERIFY).toBe(false)
    expect(config({ DOCKER_TLS_VERIFY: '' }).DOCKER_TLS_VERIFY).toBe(false)
    expect(config({ DOCKER_TLS_VERIFY: '1' }).DOCKER_TLS_VERIFY).toBe(true)
    expect(config({ DOCKER_TLS_VERIFY: 'yes' }).DOCKER_TLS_VERIFY).toBe(true)
  })
})

describe('start-up checks', () => {
  const token = { LOADER_API_TOKEN: 'caller-token-0123456789' }
  it('refuses an open non-loopback port without a caller credential; mutual TLS is one', () => {
    // A configuration error naming HOST (main.ts exits 78 on it, like every other one).
    expect(() => securityWarnings(config({ HOST: '0.0.0.0' }))).toThrow(expect.objectContaining({ name: 'ConfigError', variable: 'HOST',
      message: expect.stringMatching(/^HOST: .*LOADER_API_TOKEN.*TLS_CLIENT_CA_FILE/) }))
    expect(() => securityWarnings(config({ HOST: '0.0.0.0', TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', TLS_CLIENT_CA_FILE: '/ca' }))).not.toThrow()
  })

  it('warns off loopback without TLS that the token travels in clear, and only then', () => {
    const clear = securityWarnings(config({ HOST: '0.0.0.0', ...token }))
    expect(clear.join('\n')).toMatch(/plain HTTP: the caller token .* travel in clear/)
    expect(securityWarnings(config({ HOST: '0.0.0.0', ...token, TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k' })).join('\n')).not.toMatch(/plain HTTP/)
    expect(securityWarnings(config({ ...token })).join('\n')).not.toMatch(/plain HTTP/)
  })

  it('warns when secrets or plaintext would go upstream in clear, and only then', () => {
    const w = (vars: Record<string, string>) => securityWarnings(config(vars)).join('\n')
    expect(w({ DOCKER_HOST: 'tcp://10.0.0.5:2375' })).toMatch(/DOCKER_HOST tcp:\/\/10\.0\.0\.5:2375 is not loopback and DOCKER_TLS_VERIFY is not set/)
    expect(w({ DOCKER_HOST: 'tcp://[fd00::5]:2375' })).toMatch(/DOCKER_HOST .* is not loopback/)
    expect(w({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).not.toMatch(/DOCKER_HOST/)
    expect(w({ DOCKER_HOST: 'tcp://localhost:2375' })).not.toMatch(/DOCKER_HOST/)
    expect(w({ DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1' })).not.toMatch(/DOCKER_HOST/)
    expect(w({ DOCKER_HOST: 'unix:///var/run/docker.sock' })).not.toMatch(/DOCKER_HOST/)
    expect(w({ DOCKER_CERT_PATH: '/certs' })).toMatch(/DOCKER_CERT_PATH is set but DOCKER_TLS_VERIFY is not/)
    expect(w({ DOCKER_CERT_PATH: '/certs', DOCKER_TLS_VERIFY: '1', DOCKER_HOST: 'tcp://10.0.0.5:2376' })).not.toMatch(/DOCKER_CERT_PATH/)
    expect(w({ RESOURCE_API_URL: 'http://api.example.com' })).toMatch(/RESOURCE_API_URL http:\/\/api\.example\.com is not HTTPS and not loopback/)
    expect(w({ RESOURCE_API_URL: 'https://api.example.com' })).not.toMatch(/RESOURCE_API_URL/)
    expect(w({ RESOURCE_API_URL: 'http://127.0.0.1:9000' })).not.toMatch(/RESOURCE_API_URL/)
    expect(w({ RESOURCE_API_URL: 'http://[::1]:9000' })).not.toMatch(/RESOURCE_API_URL/)
  })

  it('/status carries the plain-HTTP warning and says how callers are authenticated', async () => {
    const open = await makeApp([statusFn], { HOST: '0.0.0.0', ...token })
    const st = await (await open.app.request('/status', { headers: { authorization: `Bearer ${token.LOADER_API_TOKEN}` } })).json()
    expect(st).toMatchObject({ transport: 'http', callerAuth: 'token', insecureOpen: false })
    expect(st.warnings.join('\n')).toMatch(/plain HTTP: the caller token/)
    const mutual = await makeApp([statusFn], { HOST: '0.0.0.0', TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', TLS_CLIENT_CA_FILE: '/ca' })
    const ms = await (await mutual.app.request('/status')).json()
    expect(ms).toMatchObject({ transport: 'https', callerAuth: 'mtls', insecureOpen: false })
    expect(ms.warnings.join('\n')).not.toMatch(/plain HTTP|caller token/)
    const both = await makeApp([statusFn], { HOST: '0.0.0.0', ...token, TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', TLS_CLIENT_CA_FILE: '/ca' })
    // Both configured: the request needs the token as well as the certificate (no certificate in process: the token alone is checked here).
    expect((await both.app.request('/status')).status).toBe(401)
    const bs = await (await both.app.request('/status', { headers: { authorization: `Bearer ${token.LOADER_API_TOKEN}` } })).json()
    expect(bs).toMatchObject({ transport: 'https', callerAuth: 'mtls+token', insecureOpen: false })
  })
})

describe('certificate reloads', () => {
  it('applies a changed valid pair to attached servers, keeps the old one on a broken pair, ignores an unchanged one', () => {
    const dir = tmp()
    const cert = join(dir, 'cert.pem')
    const key = join(dir, 'key.pem')
    copyFileSync(a.cert, cert)
    copyFileSync(a.key, key)
    const { log, lines } = memoryLog()
    const tls = createTlsListener({ cert, key, clientCa: ca.cert }, log)
    expect(tls.options).toMatchObject({ minVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: true, cert: a.certPem, ca: ca.certPem })
    const applied: unknown[] = []
    tls.attach(fakeServer(applied))

    expect(tls.reload()).toBe(false)
    expect(applied).toHaveLength(0)

    copyFileSync(b.cert, cert) // new certificate, old key: a half-done rotation
    expect(tls.reload()).toBe(false)
    expect(applied).toHaveLength(0)
    expect(lines.at(-1)).toMatchObject({ level: 'warn', msg: expect.stringContaining('not reloaded') })
    expect(JSON.stringify(lines.at(-1))).not.toContain('PRIVATE KEY')

    copyFileSync(b.key, key)
    expect(tls.reload()).toBe(true)
    expect(applied).toEqual([expect.objectContaining({ cert: b.certPem, key: b.keyPem, ca: ca.certPem, minVersion: 'TLSv1.2' })])
    expect(tls.current().fingerprint256).not.toBe(createTlsListener({ cert: a.cert, key: a.key }, log).current().fingerprint256)
    tls.close()
  })
})

describe('certificate checks and watching', () => {
  it('warns at start about a client CA that is no CA, and on a reload about an expired certificate', () => {
    const dir = tmp()
    const cert = join(dir, 'cert.pem')
    const key = join(dir, 'key.pem')
    copyFileSync(a.cert, cert)
    copyFileSync(a.key, key)
    const { log, lines } = memoryLog()
    const tls = createTlsListener({ cert, key, clientCa: client.cert }, log)
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([expect.stringMatching(/^TLS_CLIENT_CA_FILE: .* holds no CA certificate \(basicConstraints CA:TRUE\)/)])
    expect(createTlsListener({ cert, key, clientCa: ca.cert }, memoryLog().log).current().warnings).toEqual([])
    copyFileSync(expired.cert, cert)
    copyFileSync(expired.key, key)
    expect(tls.reload()).toBe(true)
    expect(lines.find((l) => /^TLS_CERT_FILE: the certificate has expired/.test(l.msg))).toMatchObject({ level: 'warn' })
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'TLS certificates reloaded' })
  })

  it('refuses TLS renegotiation', async () => {
    const tls = createTlsListener({ cert: a.cert, key: a.key }, memoryLog().log)
    expect(tls.options.secureOptions! & constants.SSL_OP_NO_RENEGOTIATION).toBeTruthy()
    const server = createHttpsServer(tls.options, (_q, r) => r.end('ok'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const socket = await new Promise<TLSSocket>((ok, fail) => {
        const s = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: ca.certPem, maxVersion: 'TLSv1.2' }, () => ok(s))
        s.once('error', fail)
      })
      socket.on('error', () => {})
      // Refused: an error, or no answer (the server ignores the request); never a completed renegotiation.
      const outcome = await new Promise<string>((ok) => {
        if (!socket.renegotiate({}, (e) => ok(e ? 'refused' : 'renegotiated'))) ok('refused')
        setTimeout(() => ok('no answer'), 2000)
      })
      expect(outcome).not.toBe('renegotiated')
      socket.destroy()
    } finally {
      server.close()
    }
  })

  it('watches the folders of each path, of every symlink it goes through and of its target (certbot, Kubernetes)', () => {
    const dir = tmp()
    for (const d of ['etc', 'live', 'archive', 'k8s/..2024_01']) mkdirSync(join(dir, d), { recursive: true })
    writeFileSync(join(dir, 'archive/cert1.pem'), 'x')
    symlinkSync('../archive/cert1.pem', join(dir, 'live/cert.pem'))
    symlinkSync('../live/cert.pem', join(dir, 'etc/tls.crt'))
    writeFileSync(join(dir, 'k8s/..2024_01/tls.key'), 'x')
    symlinkSync('..2024_01', join(dir, 'k8s/..data'))
    symlinkSync('..data/tls.key', join(dir, 'k8s/tls.key'))
    const t = watchTargets([join(dir, 'etc/tls.crt'), join(dir, 'k8s/tls.key')])
    const names = (d: string) => [...t.get(join(dir, d)) ?? []].sort()
    expect([...t.keys()].sort()).toEqual(['archive', 'etc', 'k8s', 'k8s/..2024_01', 'k8s/..data', 'live'].map((d) => join(dir, d)).sort())
    expect(names('etc')).toEqual(['..data', '..data_tmp', 'tls.crt'])
    expect(names('live')).toContain('cert.pem')
    expect(names('archive')).toContain('cert1.pem')
    expect(names('k8s')).toContain('tls.key')
    expect(names('k8s/..2024_01')).toContain('tls.key')
  })

  it('a file written often beside the certificates neither triggers nor postpones a reload; a burst on a watched file only bounds the wait', async () => {
    const dir = tmp()
    const cert = join(dir, 'cert.pem')
    const key = join(dir, 'key.pem')
    copyFileSync(a.cert, cert)
    copyFileSync(a.key, key)
    const { log, lines } = memoryLog()
    const tls = createTlsListener({ cert, key }, log)
    const applied: unknown[] = []
    tls.attach(fakeServer(applied))
    tls.watch({ debounceMs: 100 })
    let writes = 0
    const noise = setInterval(() => { writeFileSync(join(dir, 'app.log'), String(writes++)) }, 10)
    try {
      copyFileSync(b.cert, cert) // half a rotation: one refusal, then the log's writes trigger nothing
      const refusals = () => lines.filter((l) => l.msg.includes('not reloaded')).length
      await until(() => refusals() === 1, 'the refusal of the half rotation')
      const seen = writes
      await until(() => writes > seen + 30, 'more writes of the log')
      expect(refusals()).toBe(1)
      copyFileSync(b.key, key)
      await until(() => applied.length === 1, 'the rotated pair, while the log is written every 10 ms')
      // A watched file rewritten every 10 ms (a sync tool): the reload still comes, after the first event plus the debounce.
      const burst = setInterval(() => writeFileSync(cert, a.certPem), 10)
      try {
        copyFileSync(a.key, key)
        await until(() => applied.length === 2, 'the pair while its certificate is rewritten every 10 ms')
      } finally {
        clearInterval(burst)
      }
    } finally {
      clearInterval(noise)
      tls.close()
    }
  })

  it('a swapped symlinked folder is picked up by the periodic re-read, and after a reload or a rename of the watched target the watchers follow the new one', async () => {
    const dir = tmp()
    for (const [name, pair] of [['a', a], ['b', b]] as const) {
      mkdirSync(join(dir, name))
      copyFileSync(pair.cert, join(dir, name, 'cert.pem'))
      copyFileSync(pair.key, join(dir, name, 'key.pem'))
    }
    symlinkSync('a', join(dir, 'live'))
    const { log } = memoryLog()
    const tls = createTlsListener({ cert: join(dir, 'live/cert.pem'), key: join(dir, 'live/key.pem') }, log)
    const applied: { cert?: unknown }[] = []
    tls.attach(fakeServer(applied))
    const swap = (to: string) => {
      symlinkSync(to, join(dir, 'next'))
      renameSync(join(dir, 'next'), join(dir, 'live'))
    }
    tls.watch({ debounceMs: 50, pollMs: 300 })
    try {
      swap('b')
      await until(() => applied.length === 1, 'the swapped folder, by the periodic re-read')
      expect(applied[0].cert).toBe(b.certPem)
    } finally {
      tls.close()
    }
    // No periodic re-read this time: after a reload (SIGHUP) the watchers follow the new target.
    const again = createTlsListener({ cert: join(dir, 'live/cert.pem'), key: join(dir, 'live/key.pem') }, log)
    const seen: { cert?: unknown }[] = []
    again.attach(fakeServer(seen))
    again.watch({ debounceMs: 50, pollMs: 3_600_000 })
    try {
      swap('a')
      expect(again.reload()).toBe(true)
      copyFileSync(b.cert, join(dir, 'a/cert.pem'))
      copyFileSync(b.key, join(dir, 'a/key.pem'))
      await until(() => seen.length === 2, 'a rotation inside the new target, seen by a watcher')
      expect(seen[1].cert).toBe(b.certPem)
    } finally {
      again.close()
    }
    // The watched target folder moved away after a swap (no SIGHUP, no re-read): its watcher sees its own rename, re-reads and follows.
    const third = createTlsListener({ cert: join(dir, 'live/cert.pem'), key: join(dir, 'live/key.pem') }, log)
    const got: { cert?: unknown }[] = []
    third.attach(fakeServer(got))
    third.watch({ debounceMs: 50, pollMs: 3_600_000 })
    try {
      mkdirSync(join(dir, 'c'))
      copyFileSync(a.cert, join(dir, 'c/cert.pem'))
      copyFileSync(a.key, join(dir, 'c/key.pem'))
      swap('c')
      renameSync(join(dir, 'a'), join(dir, 'a.old')) // moved away whole: no event for the files inside
      await until(() => got.length === 1, 'the new target after the old one was deleted')
      expect(got[0].cert).toBe(a.certPem)
    } finally {
      third.close()
    }
  })

  it('a changed client CA closes the connections it verified: idle ones at once, busy ones after their answer', async () => {
    const dir = tmp()
    const bundle = join(dir, 'clients.pem')
    writeFileSync(bundle, ca.certPem + other.certPem)
    const tls = createTlsListener({ cert: a.cert, key: a.key, clientCa: bundle }, memoryLog().log)
    let release!: () => void
    const held = new Promise<void>((r) => { release = r })
    const server = createHttpsServer(tls.options, (req, res) => {
      if (req.url === '/slow') void held.then(() => res.end('slow'))
      else res.end('ok')
    })
    server.keepAliveTimeout = 120_000 // only the reload may close the connections
    tls.attach(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
    const agents = [0, 1].map(() => new Agent({ keepAlive: true, ca: ca.certPem, cert: stranger.certPem, key: stranger.keyPem }))
    const get = (path: string, agent: Agent) => new Promise<{ status: number; socket: TLSSocket; headers: Record<string, unknown> }>((ok, fail) => {
      const req = httpsRequest(`${url}${path}`, { agent }, (res) => {
        const socket = res.socket as TLSSocket
        res.resume()
        res.once('end', () => ok({ status: res.statusCode ?? 0, socket, headers: res.headers }))
      })
      req.once('error', fail)
      req.end()
    })
    const closed = (s: TLSSocket) => new Promise<void>((ok) => { if (s.destroyed) ok(); else s.once('close', () => ok()) })
    try {
      const idle = await get('/fast', agents[0])
      expect(idle.status).toBe(200)
      const busy = get('/slow', agents[1])
      await until(() => Object.keys(agents[1].sockets).length === 1, 'the slow request')
      let idleClosed = false
      void closed(idle.socket).then(() => { idleClosed = true })
      await new Promise((r) => setTimeout(r, 50))
      expect(idleClosed).toBe(false)
      writeFileSync(bundle, ca.certPem) // the stranger's CA is removed
      expect(tls.reload()).toBe(true)
      await until(() => idleClosed, 'the idle connection closed')
      release()
      const slow = await busy
      expect(slow.status).toBe(200)
      let busyClosed = false
      void closed(slow.socket).then(() => { busyClosed = true })
      await until(() => busyClosed, 'the busy connection closed after its answer')
      // A new connection of the stranger now fails its handshake.
      await expect(get('/fast', agents[0])).rejects.toThrow()
    } finally {
      release()
      for (const ag of agents) ag.destroy()
      server.closeAllConnections()
      server.close()
    }
  })
})

describe('engine over TLS', () => {
  it('reads ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH, only for tcp:// with DOCKER_TLS_VERIFY', async () => {
    const dir = tmp()
    copyFileSync(ca.cert, join(dir, 'ca.pem'))
    copyFileSync(client.cert, join(dir, 'cert.pem'))
    copyFileSync(client.key, join(dir, 'key.pem'))
    const on = { DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir }
    expect(await createDockerTls(config(on))()).toEqual({ ca: ca.certPem, cert: client.certPem, key: client.keyPem })
    expect(await createDockerTls(config({ ...on, DOCKER_TLS_VERIFY: '' }))()).toBeUndefined()
    expect(await createDockerTls(config({ ...on, DOCKER_HOST: 'unix:///run/docker.sock' }))()).toBeUndefined()
    expect(engineTarget('tcp://127.0.0.1:2376', { ca: '', cert: '', key: '' }).base).toBe('https://127.0.0.1:2376')
    expect(engineTarget('tcp://127.0.0.1:2375').base).toBe('http://127.0.0.1:2375')
    // A missing or broken file stops the start naming DOCKER_CERT_PATH.
    writeFileSync(join(dir, 'key.pem'), 'nope')
    expect(() => createDockerTls(config(on))).toThrow(/^DOCKER_CERT_PATH: .*key\.pem/)
    rmSync(join(dir, 'ca.pem'))
    copyFileSync(client.key, join(dir, 'key.pem'))
    expect(() => createDockerTls(config(on))).toThrow(/^DOCKER_CERT_PATH: cannot read .*ca\.pem/)
  })
})

describe('engine errors', () => {
  const err = (code: string) => Object.assign(new Error(code), { code })
  it('says how the non-root user reaches the socket when it is refused (EACCES), and names a failed TLS handshake', () => {
    expect(engineMessage(err('EACCES'), 'a.enc', 'unix:///var/run/docker.sock'))
      .toBe('the Docker engine at unix:///var/run/docker.sock could not be reached (EACCES): the loader\'s user may not use the socket; in a container, add the socket\'s group (--group-add $(stat -c %g /var/run/docker.sock))')
    expect(engineMessage(err('ENOENT'), 'a.enc', 'unix:///x.sock')).toBe('the Docker engine at unix:///x.sock could not be reached (ENOENT)')
    expect(engineMessage(err('ERR_TLS_CERT_ALTNAME_INVALID'), 'a.enc', 'tcp://h:2376')).toMatch(/failed the TLS handshake \(ERR_TLS_CERT_ALTNAME_INVALID\): check DOCKER_CERT_PATH/)
  })
})
