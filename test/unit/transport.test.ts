// Transport security pieces in process: the TLS variables, the start-up checks, certificate reloads, DOCKER_CERT_PATH.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../runtime/config'
import { securityWarnings } from '../../runtime/env'
import { createTlsListener } from '../../runtime/tls'
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
const dirs: string[] = []
beforeAll(() => {
  ca = makeCa()
  a = ca.issue('a', 'server')
  b = ca.issue('b', 'server')
  client = ca.issue('docker-client', 'client')
})
afterAll(() => {
  ca?.remove()
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
    expect(() => securityWarnings(config({ HOST: '0.0.0.0' }))).toThrow(/LOADER_API_TOKEN.*TLS_CLIENT_CA_FILE/)
    expect(() => securityWarnings(config({ HOST: '0.0.0.0', TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', TLS_CLIENT_CA_FILE: '/ca' }))).not.toThrow()
  })

  it('warns off loopback without TLS that the token travels in clear, and only then', () => {
    const clear = securityWarnings(config({ HOST: '0.0.0.0', ...token }))
    expect(clear.join('\n')).toMatch(/plain HTTP: the caller token .* travel in clear/)
    expect(securityWarnings(config({ HOST: '0.0.0.0', ...token, TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k' })).join('\n')).not.toMatch(/plain HTTP/)
    expect(securityWarnings(config({ ...token })).join('\n')).not.toMatch(/plain HTTP/)
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
    tls.attach({ setSecureContext: (o: unknown) => applied.push(o) } as never)

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
