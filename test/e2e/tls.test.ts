// Transport security end to end (http.md "Transport security"): the built runtime over HTTPS and
// mutual TLS with certificates made by the openssl command line, rotation without a restart, and
// upstreams behind a TLS proxy signed by a private CA (NODE_EXTRA_CA_CERTS).
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { Agent, request as httpsRequest } from 'node:https'
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, startLoader, type LoaderProcess } from '../helpers/spawn'
import { post, startStack, type Stack } from '../helpers/stack'
import { fingerprintOf, httpsFetch, makeCa, startTlsProxy, type Ca, type Pair } from '../helpers/tls'
import { SALTS } from '../helpers/vectors'

let ca: Ca
let other: Ca
let server: Pair
let rotated: Pair
let client: Pair
let stranger: Pair
let expiredClient: Pair
const temps: string[] = []
beforeAll(() => {
  ca = makeCa()
  other = makeCa('Another CA')
  server = ca.issue('server', 'server')
  rotated = ca.issue('rotated', 'server')
  client = ca.issue('device-1', 'client')
  stranger = other.issue('stranger', 'client')
  expiredClient = ca.issue('expired-device', 'client', undefined, -1)
})
afterAll(() => {
  ca?.remove()
  other?.remove()
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

let running: LoaderProcess[] = []
afterEach(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')))
  running = []
})
const start = async (vars: Record<string, string>) => {
  const p = await startLoader(vars)
  running.push(p)
  return p
}
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'loader-tls-e2e-'))
  temps.push(d)
  return d
}
/** The runtime started with `vars`, expected to stop at once. */
const startFails = (vars: Record<string, string>) => spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
  env: { PATH: process.env.PATH, ...SALTS, PORT: '0', CACHE_DIR: tmp(), ...vars }, encoding: 'utf8', timeout: 10_000,
})
/** Polls until `check` holds (each poll on a fresh connection). */
async function until(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 200; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`never: ${what}`)
}

describe('HTTPS on the callers\' port', () => {
  it('serves HTTPS (TLS ≥ 1.2) with the configured certificate and nothing over plain HTTP', async () => {
    const p = await start({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key })
    const r = await httpsFetch(`${p.url}/status`, { ca: ca.certPem })
    expect(r.status).toBe(200)
    expect(r.fingerprint256).toBe(fingerprintOf(server.cert))
    expect(['TLSv1.2', 'TLSv1.3']).toContain(r.protocol)
    expect(JSON.parse(r.body.toString())).toMatchObject({ transport: 'https', callerAuth: 'off' })
    await expect(fetch(`http://127.0.0.1:${p.port}/health`)).rejects.toThrow()
    // A client that offers at most TLS 1.1 gets no handshake.
    await expect(httpsFetch(`${p.url}/health`, { ca: ca.certPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toThrow()
    // The server's certificate is checked by the client as usual: a client without the CA refuses it.
    await expect(httpsFetch(`${p.url}/health`, {})).rejects.toThrow(/self-signed|unable to verify|certificate/i)
  })

  it('stops at start with one line naming the variable for a half, broken or mismatched pair', () => {
    const line = (vars: Record<string, string>) => {
      const r = startFails(vars)
      expect(r.status).toBe(78)
      const lines = r.stderr.trim().split('\n')
      expect(lines).toHaveLength(1)
      return lines[0]
    }
    expect(line({ TLS_CERT_FILE: server.cert })).toMatch(/^loader: configuration error: TLS_KEY_FILE: is required/)
    expect(line({ TLS_KEY_FILE: server.key })).toMatch(/^loader: configuration error: TLS_CERT_FILE: is required/)
    expect(line({ TLS_CLIENT_CA_FILE: ca.cert })).toMatch(/^loader: configuration error: TLS_CERT_FILE: is required/)
    const garbage = join(tmp(), 'garbage.pem')
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n')
    expect(line({ TLS_CERT_FILE: garbage, TLS_KEY_FILE: server.key })).toMatch(/^loader: configuration error: TLS_CERT_FILE: .*does not parse/)
    expect(line({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.cert })).toMatch(/^loader: configuration error: TLS_KEY_FILE: .*no unencrypted PEM private key/)
    expect(line({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: rotated.key })).toMatch(/^loader: configuration error: TLS_KEY_FILE: .*does not match/)
    expect(line({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: '/nonexistent/key.pem' })).toMatch(/^loader: configuration error: TLS_KEY_FILE: cannot read .*ENOENT/)
    expect(line({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: server.key })).toMatch(/^loader: configuration error: TLS_CLIENT_CA_FILE: /)
    // The engine's certificates likewise, read as the Docker CLI reads them.
    expect(line({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' })).toMatch(/^loader: configuration error: DOCKER_CERT_PATH: cannot read \/nonexistent\/cert\.pem/)
  })

  it('mutual TLS: no client certificate or one from another CA fails the handshake, logged with its reason; with the token set a request needs both; logged by subject', async () => {
    const token = 'a-token-the-caller-must-send-0123'
    const p = await start({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: ca.cert, LOADER_API_TOKEN: token })
    await expect(httpsFetch(`${p.url}/health`, { ca: ca.certPem })).rejects.toThrow()
    await expect(httpsFetch(`${p.url}/health`, { ca: ca.certPem, cert: stranger.certPem, key: stranger.keyPem })).rejects.toThrow()
    const mine = { ca: ca.certPem, cert: client.certPem, key: client.keyPem }
    // A verified certificate and a wrong or missing token: 401.
    expect((await httpsFetch(`${p.url}/status`, mine)).status).toBe(401)
    expect((await httpsFetch(`${p.url}/status`, mine, { headers: { authorization: 'Bearer wrong-token-0123456789abcdef' } })).status).toBe(401)
    const r = await httpsFetch(`${p.url}/status`, mine, { headers: { authorization: `Bearer ${token}` } })
    expect(r.status).toBe(200)
    expect(JSON.parse(r.body.toString())).toMatchObject({ callerAuth: 'mtls+token', transport: 'https' })
    await until(async () => p.output().includes('"status":200'), 'the access log line')
    const logLine = p.output().split('\n').find((l) => l.includes('"path":"/status"') && l.includes('"status":200'))!
    expect(JSON.parse(logLine)).toMatchObject({ msg: 'request', status: 200, clientCert: 'O=Loader Tests, CN=device-1' })
    const refused = () => p.output().split('\n').filter((l) => l.includes('"msg":"TLS handshake refused"')).map((l) => JSON.parse(l))
    // The first refusal of this address is logged with its reason; the next ones that minute are counted, not logged.
    expect(refused()).toEqual([expect.objectContaining({ client: '127.0.0.1', reason: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' })])

    // An expired client certificate: the reason is the verification error, not the socket's.
    const q = await start({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: ca.cert })
    await expect(httpsFetch(`${q.url}/health`, { ca: ca.certPem, cert: expiredClient.certPem, key: expiredClient.keyPem })).rejects.toThrow()
    await until(async () => q.output().includes('TLS handshake refused'), 'the refusal line')
    const line = JSON.parse(q.output().split('\n').find((l) => l.includes('TLS handshake refused'))!)
    expect(line).toMatchObject({ client: '127.0.0.1', reason: 'CERT_HAS_EXPIRED' })
    // With mutual TLS alone, the certificate is the credential.
    const alone = await httpsFetch(`${q.url}/status`, mine)
    expect(alone.status).toBe(200)
    expect(JSON.parse(alone.body.toString())).toMatchObject({ callerAuth: 'mtls' })
  })

  it('logs the client certificate of a request the caller aborted', async () => {
    const p = await start({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: ca.cert })
    await new Promise<void>((ok) => {
      const req = httpsRequest(`${p.url}/login`, { method: 'POST', agent: false, ca: ca.certPem, cert: client.certPem, key: client.keyPem,
        headers: { 'content-type': 'application/json', 'content-length': '1000' } })
      req.once('error', () => ok())
      req.write('{"email":"a')
      setTimeout(() => req.destroy(), 200)
    })
    await until(async () => p.output().includes('"path":"/login"'), 'the access log line of the aborted request')
    const logLine = p.output().split('\n').find((l) => l.includes('"path":"/login"'))!
    expect(JSON.parse(logLine)).toMatchObject({ msg: 'request', clientCert: 'O=Loader Tests, CN=device-1' })
  })

  it('a changed TLS_CLIENT_CA_FILE ends the keep-alive connections of callers it no longer admits', async () => {
    const dir = tmp()
    const bundle = join(dir, 'clients.pem')
    writeFileSync(bundle, ca.certPem + other.certPem)
    const p = await start({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: bundle })
    const agent = new Agent({ keepAlive: true, ca: ca.certPem, cert: stranger.certPem, key: stranger.keyPem })
    const get = () => new Promise<{ status: number; socket: TLSSocket }>((ok, fail) => {
      const req = httpsRequest(`${p.url}/health`, { agent }, (res) => {
        const socket = res.socket as TLSSocket
        res.resume()
        res.once('end', () => ok({ status: res.statusCode ?? 0, socket }))
      })
      req.once('error', fail)
      req.end()
    })
    try {
      const first = await get()
      expect(first.status).toBe(200)
      expect((await get()).socket).toBe(first.socket) // kept alive
      let closed = false
      first.socket.once('close', () => { closed = true })
      writeFileSync(bundle, ca.certPem) // the stranger's CA is removed
      await until(async () => p.output().includes('TLS certificates reloaded'), 'the reload')
      // At once (long before the server's keep-alive timeout): the next request is not served,
      // neither on the old connection nor on a new one (its handshake fails).
      await expect(get()).rejects.toThrow()
      await until(async () => closed, 'the old connection closed')
    } finally {
      agent.destroy()
    }
  })

  it('follows certificates symlinked into another folder (certbot: etc/tls.crt → ../live/cert.pem → ../archive/cert1.pem)', async () => {
    const dir = tmp()
    for (const d of ['etc', 'live', 'archive']) mkdirSync(join(dir, d))
    copyFileSync(server.cert, join(dir, 'archive/cert1.pem'))
    copyFileSync(server.key, join(dir, 'archive/privkey1.pem'))
    symlinkSync('../archive/cert1.pem', join(dir, 'live/cert.pem'))
    symlinkSync('../archive/privkey1.pem', join(dir, 'live/privkey.pem'))
    symlinkSync('../live/cert.pem', join(dir, 'etc/tls.crt'))
    symlinkSync('../live/privkey.pem', join(dir, 'etc/tls.key'))
    const p = await start({ TLS_CERT_FILE: join(dir, 'etc/tls.crt'), TLS_KEY_FILE: join(dir, 'etc/tls.key') })
    const served = async () => (await httpsFetch(`${p.url}/health`, { ca: ca.certPem })).fingerprint256
    expect(await served()).toBe(fingerprintOf(server.cert))
    // A renewal as certbot makes it: new files in archive/, the live/ links replaced.
    copyFileSync(rotated.cert, join(dir, 'archive/cert2.pem'))
    copyFileSync(rotated.key, join(dir, 'archive/privkey2.pem'))
    for (const [link, target] of [['cert.pem', 'cert2.pem'], ['privkey.pem', 'privkey2.pem']]) {
      symlinkSync(`../archive/${target}`, join(dir, `live/${link}.new`))
      renameSync(join(dir, `live/${link}.new`), join(dir, `live/${link}`))
    }
    await until(async () => (await served()) === fingerprintOf(rotated.cert), 'the renewed certificate, without SIGHUP')
    // The next renewal is seen too: the watchers follow the links as they are now.
    copyFileSync(server.cert, join(dir, 'archive/cert3.pem'))
    copyFileSync(server.key, join(dir, 'archive/privkey3.pem'))
    for (const [link, target] of [['cert.pem', 'cert3.pem'], ['privkey.pem', 'privkey3.pem']]) {
      symlinkSync(`../archive/${target}`, join(dir, `live/${link}.new`))
      renameSync(join(dir, `live/${link}.new`), join(dir, `live/${link}`))
    }
    await until(async () => (await served()) === fingerprintOf(server.cert), 'the second renewal')
  })

  it('serves a certificate rewritten in place without SIGHUP, and keeps the old one while the new pair is broken', async () => {
    const dir = tmp()
    const cert = join(dir, 'tls.crt')
    const key = join(dir, 'tls.key')
    copyFileSync(server.cert, cert)
    copyFileSync(server.key, key)
    const p = await start({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key })
    const served = async () => (await httpsFetch(`${p.url}/health`, { ca: ca.certPem })).fingerprint256
    expect(await served()).toBe(fingerprintOf(server.cert))
    // Half a rotation (new certificate, old key): refused, the old pair keeps serving.
    copyFileSync(rotated.cert, cert)
    await until(async () => p.output().includes('TLS certificates not reloaded'), 'the warning about the broken pair')
    expect(await served()).toBe(fingerprintOf(server.cert))
    copyFileSync(rotated.key, key)
    await until(async () => (await served()) === fingerprintOf(rotated.cert), 'the rotated certificate')
    expect(p.output()).toContain('TLS certificates reloaded')
  })
})

describe('the image', () => {
  it('its HEALTHCHECK passes over HTTP, HTTPS and mutual TLS, and fails when nothing answers', async () => {
    const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    const cmd = JSON.parse(/HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])\n/.exec(docker)![1]) as string[]
    expect(cmd.slice(0, 2)).toEqual(['node', '-e'])
    const check = (vars: Record<string, string>) => spawnSync(process.execPath, cmd.slice(1), { env: { PATH: process.env.PATH, ...vars }, timeout: 10_000 }).status
    const plain = await start({})
    expect(check({ PORT: String(plain.port) })).toBe(0)
    const https = await start({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key })
    expect(check({ PORT: String(https.port), TLS_CERT_FILE: server.cert })).toBe(0)
    const mutual = await start({ TLS_CERT_FILE: server.cert, TLS_KEY_FILE: server.key, TLS_CLIENT_CA_FILE: ca.cert })
    expect(check({ PORT: String(mutual.port), TLS_CERT_FILE: server.cert, TLS_CLIENT_CA_FILE: ca.cert })).toBe(0)
    // It is this loader's certificate that must be served (not just any TLS handshake).
    expect(check({ PORT: String(mutual.port), TLS_CERT_FILE: rotated.cert, TLS_CLIENT_CA_FILE: ca.cert })).toBe(1)
    await mutual.stop()
    expect(check({ PORT: String(mutual.port), TLS_CERT_FILE: server.cert, TLS_CLIENT_CA_FILE: ca.cert })).toBe(1)
    expect(check({ PORT: String(https.port) })).toBe(1) // plain HTTP to the HTTPS port
  })

  it('the README runs the container with the docker socket\'s group, so the non-root user can reach it', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    expect(readme).toContain('--group-add $(stat -c %g /var/run/docker.sock)')
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^USER loader$/m)
  })
})

describe('with the stack', () => {
  const USER = ['tls@example.com', 'tls-pass-1']
  let s: Stack
  beforeAll(async () => {
    s = await startStack({ [USER[0]]: [USER[1], 'ApiAdmin'] })
  })
  afterAll(async () => s?.stop())

  it('a rotated certificate is served after SIGHUP while a long load started before the rotation completes', async () => {
    // The files sit behind a symlinked folder whose swap the file watchers do not see (its parent is
    // not watched): SIGHUP re-reads them at once (the periodic re-read would, within a minute).
    const dir = tmp()
    for (const [name, pair] of [['a', server], ['b', rotated]] as const) {
      mkdirSync(join(dir, name))
      copyFileSync(pair.cert, join(dir, name, 'cert.pem'))
      copyFileSync(pair.key, join(dir, name, 'key.pem'))
    }
    symlinkSync(join(dir, 'a'), join(dir, 'live'))
    await s.restartLoader({ TLS_CERT_FILE: join(dir, 'live/cert.pem'), TLS_KEY_FILE: join(dir, 'live/key.pem') })
    const base = s.loader.url
    const tls = { ca: ca.certPem }
    const json = { 'content-type': 'application/json' }
    expect((await httpsFetch(`${base}/login`, tls, { method: 'POST', headers: json, body: JSON.stringify({ email: USER[0], password: USER[1] }) })).status).toBe(200)
    const data = randomBytes(16 * 1024 * 1024)
    const up = await new Promise<number>((ok, fail) => {
      const req = httpsRequest(`${base}/upload/long.bin?folder=models`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, agent: false, ...tls }, (res) => { res.resume(); ok(res.statusCode ?? 0) })
      req.once('error', fail)
      req.end(data)
    })
    expect(up).toBe(201)

    // The long load: read slowly (one chunk per 50 ms) until the rotation is seen, then at full speed.
    let slow = true
    let bytes = 0
    let ended = false
    const hash = createHash('sha256')
    const res = await new Promise<IncomingMessage>((ok, fail) => {
      const req = httpsRequest(`${base}/load/long.bin`, { method: 'POST', headers: json, agent: false, ...tls }, ok)
      req.once('error', fail)
      req.end(JSON.stringify({ folder: 'models' }))
    })
    expect(res.statusCode).toBe(200)
    expect((res.socket as TLSSocket).getPeerCertificate().fingerprint256).toBe(fingerprintOf(server.cert))
    const done = new Promise<void>((ok, fail) => {
      res.on('data', (c: Buffer) => {
        bytes += c.length
        hash.update(c)
        if (slow) {
          res.pause()
          setTimeout(() => res.resume(), 50)
        }
      })
      res.once('end', () => { ended = true; ok() })
      res.once('error', fail)
    })
    await until(async () => bytes > 0, 'the first bytes of the load')

    symlinkSync(join(dir, 'b'), join(dir, 'next'))
    renameSync(join(dir, 'next'), join(dir, 'live'))
    s.loader.child.kill('SIGHUP')
    await until(async () => (await httpsFetch(`${base}/health`, tls)).fingerprint256 === fingerprintOf(rotated.cert), 'the rotated certificate after SIGHUP')
    expect(ended).toBe(false)
    expect(s.loader.child.exitCode).toBeNull()
    slow = false
    res.resume()
    await done
    expect(bytes).toBe(data.length)
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'))
  })

  it('reaches the Resource API and S3 behind TLS from a private CA with NODE_EXTRA_CA_CERTS, and fails without it', async () => {
    const api = await startTlsProxy(s.originUrl, server)
    const cdn = await startTlsProxy(s.moto.url, server)
    try {
      const login = () => post(s.loader.url, '/login', { email: USER[0], password: USER[1] })
      const load = (name: string) => post(s.loader.url, `/load/${name}`, { folder: 'models' })
      const upload = (name: string, body: Buffer) => fetch(`${s.loader.url}/upload/${name}?folder=models`, {
        method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(body),
      })
      const data = randomBytes(300_000)
      s.setCdnYaml({ host: cdn.url })

      // With the CA: login (ofetch/undici), upload (node:https PUT) and a cold load (node:https GET).
      const trusted = { RESOURCE_API_URL: api.url, NODE_EXTRA_CA_CERTS: ca.cert }
      await s.restartLoader(trusted)
      expect((await login()).status).toBe(200)
      expect((await upload('private-ca.bin', data)).status).toBe(201)
      rmSync(join(s.loader.cacheDir, 'cache'), { recursive: true, force: true })
      await s.restartLoader(trusted)
      expect((await login()).status).toBe(200)
      const cold = await load('private-ca.bin')
      expect(cold.status).toBe(200)
      expect(Buffer.from(await cold.arrayBuffer()).equals(data)).toBe(true)
      // A verified download (crypto.md §5c) commits after the caller's last byte: wait for it, so no
      // complete partial file is left for the loads below to resume from.
      for (let i = 0; i < 400 && (await (await fetch(`${s.loader.url}/status`)).json()).downloads.length; i++) await new Promise((r) => setTimeout(r, 25))

      // Without it, the Resource API behind TLS is refused: login 502.
      await s.restartLoader({ RESOURCE_API_URL: api.url })
      const refused = await login()
      expect(refused.status).toBe(502)
      // Said as such, naming the reason, not as an unreachable upstream.
      expect((await refused.json()).detail).toMatch(/^the Resource API's TLS certificate was not accepted for the login \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\).*NODE_EXTRA_CA_CERTS/)
      // The API in clear, the CDN behind TLS: login works (cdn.yaml comes from the API), the CDN is refused.
      rmSync(join(s.loader.cacheDir, 'cache'), { recursive: true, force: true })
      await s.restartLoader({ RESOURCE_API_URL: s.originUrl })
      expect((await login()).status).toBe(200)
      const noCdn = await load('private-ca.bin')
      expect(noCdn.status).toBe(502)
      expect((await noCdn.json()).detail).toMatch(/^the CDN's TLS certificate was not accepted .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/)
      const noPut = await upload('private-ca-2.bin', data)
      expect(noPut.status).toBe(502)
      expect((await noPut.json()).detail).toMatch(/^the CDN's TLS certificate was not accepted .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/)
    } finally {
      s.setCdnYaml()
      api.close()
      cdn.close()
    }
  })
})
