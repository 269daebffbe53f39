// The unlock state machine and its error mapping, with source functions, the origin on a real port, and a fake engine on a unix socket.
import { serve } from '@hono/node-server'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { PassThrough } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp'
import unlockFn from '../../functions/unlock/index'
import statusFn from '../../functions/status/index'
import { aesKey, encryptBuffer } from '../../shared/crypto/blob'
import { createOrigin } from '../origin/origin'
import { makeApp } from '../helpers/env'
import { startFakeEngine, type FakeEngine } from '../helpers/fake-engine'
import { recoverInterrupted } from '../../runtime/recover'
import { readUnlock } from '../../shared/contract/unlock-state'
import { SALTS } from '../helpers/vectors'
import { makeCa } from '../helpers/tls'
import { copyFileSync } from 'node:fs'

const JWT = 'jwt-secret-for-tests-0123456789'
const USER = { email: 'unlock@example.com', password: 'unlock-pass' }
const FRAGMENT = 'fragment-0123456789'
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let originUrl: string
let originServer: Server
let origin: ReturnType<typeof createOrigin>
beforeAll(async () => {
  origin = createOrigin({ jwtSecret: JWT, salts: SALTS })
  origin.state.users.set(USER.email, { password: USER.password, role: 'Operator' })
  origin.state.keyFragment = FRAGMENT
  origin.state.files.set('cdn.yaml', Buffer.from('host: http://127.0.0.1:9\ndownloader_access_key: a\ndownloader_access_secret: b\n'))
  originServer = serve({ fetch: origin.app.fetch, hostname: '127.0.0.1', port: 0 }) as Server
  await new Promise<void>((r) => (originServer.listening ? r() : originServer.once('listening', r)))
  originUrl = `http://127.0.0.1:${(originServer.address() as AddressInfo).port}`
})
afterAll(() => { originServer.closeAllConnections(); originServer.close() })

/** A folder of archives encrypted under `fragment`. */
function archives(plains: Buffer[], fragment = FRAGMENT): string {
  const dir = tempDir('archives-')
  plains.forEach((p, i) => writeFileSync(join(dir, `${String(i).padStart(2, '0')}-image.enc`), encryptBuffer(aesKey(fragment), p)))
  writeFileSync(join(dir, 'ignored.txt'), 'not an archive')
  return dir
}

async function world(engine: FakeEngine | string, archive: string, vars: Record<string, string> = {}) {
  const dockerHost = typeof engine === 'string' ? engine : `unix://${engine.socket}`
  const w = await makeApp([unlockFn, statusFn], { RESOURCE_API_URL: originUrl, JWT_SECRET: JWT, UNLOCK_ARCHIVE: archive, DOCKER_HOST: dockerHost, LOGIN_RATE_PER_MINUTE: '1000', ...vars })
  const post = (body: unknown = USER) => w.app.request('/unlock', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const status = async () => (await w.app.request('/unlock/status')).json()
  const settle = async () => {
    for (let i = 0; i < 400; i++) {
      const s = await status()
      if (s.state === 'ready' || s.state === 'error') return s
      await new Promise((r) => setTimeout(r, 25))
    }
    throw new Error('unlock never settled')
  }
  return { ...w, post, status, settle }
}

describe('unlock', () => {
  it('runs authenticating → … → ready, streaming the exact plaintext into the engine', async () => {
    const engine = await startFakeEngine('podman', ['localhost/a:1', 'localhost/b:2'])
    const plains = [randomBytes(300_000), randomBytes(17)]
    const w = await world(engine, archives(plains))
    expect(await w.status()).toMatchObject({ state: 'idle' })
    const r = await w.post()
    expect(r.status).toBe(202)
    expect((await r.json()).state).toBe('authenticating')
    const s = await w.settle()
    expect(s).toMatchObject({ state: 'ready', error: null, images: ['localhost/a:1', 'localhost/b:2', 'localhost/a:1', 'localhost/b:2'] })
    expect(s.progress.bytesDone).toBe(s.progress.bytesTotal)
    expect(engine.received.map((x) => x.sha256)).toEqual(plains.map(sha))
    expect(engine.received[0].contentType).toBe('application/x-tar')
    // Logged in as after /login.
    expect((await (await w.app.request('/status')).json()).user).toEqual({ email: USER.email, role: 'Operator' })
    // After ready: 200 with the state, nothing started; force runs again.
    const again = await w.post()
    expect(again.status).toBe(200)
    expect(engine.received.length).toBe(2)
    expect((await w.post({ ...USER, force: true })).status).toBe(202)
    await w.settle()
    expect(engine.received.length).toBe(4)
    await engine.close()
  })

  it('after ready, a plain POST /unlock runs again when the engine has lost an image (or cannot be asked)', async () => {
    const engine = await startFakeEngine('podman', ['localhost/a:1', 'localhost/b:2'])
    const w = await world(engine, archives([randomBytes(1000)]))
    expect((await w.post()).status).toBe(202)
    expect(await w.settle()).toMatchObject({ state: 'ready' })
    expect((await w.post()).status).toBe(200)
    expect(engine.received.length).toBe(1)
    // Someone removed one image from the engine: the next plain POST /unlock loads it again.
    engine.images.delete('localhost/b:2')
    expect((await w.post()).status).toBe(202)
    expect(await w.settle()).toMatchObject({ state: 'ready', images: ['localhost/a:1', 'localhost/b:2'] })
    expect(engine.received.length).toBe(2)
    expect(engine.images.has('localhost/b:2')).toBe(true)
    expect((await w.post()).status).toBe(200)
    // An engine that is gone cannot confirm the images: the run again reports why.
    await engine.close()
    expect((await w.post()).status).toBe(202)
    expect(await w.settle()).toMatchObject({ state: 'error', error: expect.stringMatching(/could not be reached/) })
  })

  it('an engine that answers before the archive file reports its end still leaves ready (no late phase write)', async () => {
    // A tar is a multiple of 512 bytes, so its last cipher block is all padding: the engine can
    // have the whole plaintext, and answer, before the file stream has emitted 'end'.
    const engine = await startFakeEngine('podman', ['localhost/late:1'])
    const w = await world(engine, archives([randomBytes(8192)]))
    const open = w.env.archives.open.bind(w.env.archives)
    w.env.archives = { ...w.env.archives, open: (a) => {
      const late = new PassThrough()
      const src = open(a)
      src.on('data', (c) => late.write(c))
      src.once('end', () => setTimeout(() => late.end(), 300))
      return late
    } }
    await w.post()
    expect(await w.settle()).toMatchObject({ state: 'ready', images: ['localhost/late:1'] })
    await new Promise((r) => setTimeout(r, 500))
    expect(await w.status()).toMatchObject({ state: 'ready', images: ['localhost/late:1'] })
    await engine.close()
  })

  it('an engine that never answers ends in error after DOCKER_TIMEOUT_MS, saying so', async () => {
    const engine = await startFakeEngine('podman')
    engine.delayMs = 5000
    const w = await world(engine, archives([randomBytes(1000)]), { DOCKER_TIMEOUT_MS: '1000' })
    await w.post()
    const s = await w.settle()
    expect(s.state).toBe('error')
    expect(s.error).toMatch(/Docker engine at unix:.* did not answer for 00-image\.enc: (no answer within|the connection was idle for) 1000 ms/)
    await engine.close()
  })

  it('a second POST while one runs starts nothing and answers 202 with its state', async () => {
    const engine = await startFakeEngine('dockerd', ['localhost/x:1'])
    engine.delayMs = 300
    const w = await world(engine, archives([randomBytes(50_000)]))
    const [a, b] = await Promise.all([w.post(), w.post()])
    expect([a.status, b.status]).toEqual([202, 202])
    const c = await w.post()
    expect(c.status).toBe(202)
    expect((await w.settle()).images).toEqual(['localhost/x:1'])
    expect(engine.received.length).toBe(1)
    await engine.close()
  })

  it.each([
    ['podman-error', /refused 00-image\.enc: failed to load image: payload does not match/],
    ['dockerd-error', /refused 00-image\.enc: invalid tar header/],
  ] as const)('an engine error (%s) ends in error with the engine\'s message', async (mode, message) => {
    const engine = await startFakeEngine(mode)
    const w = await world(engine, archives([randomBytes(1000)]))
    await w.post()
    const s = await w.settle()
    expect(s.state).toBe('error')
    expect(s.error).toMatch(message)
    await engine.close()
  })

  it('a wrong key is reported before the engine sees a byte', async () => {
    const engine = await startFakeEngine()
    const w = await world(engine, archives([randomBytes(1000)], 'some-other-fragment'))
    await w.post()
    const s = await w.settle()
    expect(s).toMatchObject({ state: 'error' })
    expect(s.error).toMatch(/does not decrypt with the key fragment \(wrong key/)
    expect(engine.received.length).toBe(0)
    await engine.close()
  })

  it('a missing archive and an unreachable engine each say which', async () => {
    const engine = await startFakeEngine()
    const w = await world(engine, join(tmpdir(), 'no-such-archive.enc'))
    await w.post()
    expect((await w.settle()).error).toMatch(/no archive at UNLOCK_ARCHIVE/)
    const empty = tempDir('empty-')
    const w2 = await world(engine, empty)
    await w2.post()
    expect((await w2.settle()).error).toMatch(/has no \*\.enc archives/)
    const w3 = await world('unix:///nonexistent/docker.sock', archives([randomBytes(100)]))
    await w3.post()
    expect((await w3.settle()).error).toMatch(/Docker engine at unix:\/\/\/nonexistent\/docker.sock could not be reached \(ENOENT\)/)
    await engine.close()
  })

  it('reaches an engine on tcp:// with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), verified both ways', async () => {
    const ca = makeCa('Engine CA')
    const other = makeCa('Other CA')
    try {
      const srv = ca.issue('engine', 'server')
      const engine = await startFakeEngine('podman', ['localhost/tls:1'], { cert: srv.certPem, key: srv.keyPem, ca: ca.certPem })
      const certDir = (client: { cert: string; key: string }, trusted: string) => {
        const d = tempDir('docker-certs-')
        copyFileSync(trusted, join(d, 'ca.pem'))
        copyFileSync(client.cert, join(d, 'cert.pem'))
        copyFileSync(client.key, join(d, 'key.pem'))
        return d
      }
      const plain = randomBytes(5000)
      const good = await world(engine.tcp!, archives([plain]), { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certDir(ca.issue('loader', 'client'), ca.cert) })
      await good.post()
      expect(await good.settle()).toMatchObject({ state: 'ready', images: ['localhost/tls:1'] })
      expect(engine.received.map((x) => x.sha256)).toEqual([sha(plain)])
      // After ready, a plain POST asks the engine (over the same TLS) whether it still has the image: 200, nothing run again.
      expect((await good.post()).status).toBe(200)
      expect(engine.received).toHaveLength(1)
      // A client certificate the engine does not trust, an engine the CA does not vouch for, no TLS at all: error, nothing loaded.
      for (const vars of <Record<string, string>[]>[
        { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certDir(other.issue('stranger', 'client'), ca.cert) },
        { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certDir(ca.issue('loader-2', 'client'), other.cert) },
        {},
      ]) {
        const w = await world(engine.tcp!, archives([plain]), vars)
        await w.post()
        const st = await w.settle()
        expect(st.state).toBe('error')
        expect(st.error).toMatch(new RegExp(`Docker engine at ${engine.tcp}`))
      }
      expect(engine.received).toHaveLength(1)
      await engine.close()
    } finally {
      ca.remove()
      other.remove()
    }
  })

  it('bad credentials end in error without touching the engine', async () => {
    const engine = await startFakeEngine()
    const w = await world(engine, archives([randomBytes(100)]))
    await w.post({ ...USER, password: 'wrong' })
    const s = await w.settle()
    expect(s.state).toBe('error')
    expect(s.error).toMatch(/refused these credentials/)
    expect(JSON.stringify(s)).not.toContain('wrong')
    await engine.close()
  })

  it('a state left unfinished by a previous process becomes error: interrupted', async () => {
    const engine = await startFakeEngine()
    const w = await world(engine, archives([randomBytes(100)]))
    await w.env.state.setItem('unlock:status', { state: 'decrypting', progress: { bytesDone: 5, bytesTotal: 10 }, images: [], error: null, updatedAt: '' })
    await recoverInterrupted(w.env)
    expect(await w.status()).toMatchObject({ state: 'error', error: 'interrupted' })
    await engine.close()
  })

  /** Makes every write of `env.state` fail as a full disk does (reads still work). */
  const fullDisk = (w: { env: { state: { setItem: unknown } } }, after = 0) => {
    const real = w.env.state.setItem as (...a: unknown[]) => Promise<void>
    let n = 0
    w.env.state.setItem = (...a: unknown[]) => (n++ < after ? real(...a)
      : Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })))
  }

  /** This process's open descriptors on files under `dir` (the archives). */
  const fdsUnder = (dir: string) => readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const t = readlinkSync(`/proc/self/fd/${fd}`)
      return t.startsWith(dir) ? [t] : []
    } catch {
      return []
    }
  })
  const eventually = async <T>(get: () => T | Promise<T>, want: T) => {
    let v = await get()
    for (let i = 0; i < 100 && JSON.stringify(v) !== JSON.stringify(want); i++) {
      await new Promise((r) => setTimeout(r, 20))
      v = await get()
    }
    return v
  }

  it('a full disk when the job would start: 507 disk-full, nothing started, and a later POST works once there is room', async () => {
    const engine = await startFakeEngine('podman', ['localhost/a:1'])
    const w = await world(engine, archives([randomBytes(1000)]))
    const setItem = w.env.state.setItem
    fullDisk(w)
    const r = await w.post()
    expect(r.status).toBe(507)
    expect(r.headers.get('content-type')).toMatch(/problem\+json/)
    expect(await r.json()).toMatchObject({ type: expect.stringMatching(/disk-full/), code: 'ENOSPC' })
    expect(engine.received.length).toBe(0)
    w.env.state.setItem = setItem
    expect((await w.post()).status).toBe(202)
    expect(await w.settle()).toMatchObject({ state: 'ready', images: ['localhost/a:1'] })
    await engine.close()
  })

  it('a job that cannot record its end (full disk meanwhile) is not reported as running forever', async () => {
    const engine = await startFakeEngine('podman', ['localhost/a:1'])
    const w = await world(engine, archives([randomBytes(1000)]))
    // The first write (authenticating) lands, every later one fails.
    fullDisk(w, 1)
    expect((await w.post()).status).toBe(202)
    const s = await w.settle()
    expect(s.state).toBe('error')
    expect(s.error).toMatch(/could not be recorded|ENOSPC|disk/)
    expect(JSON.stringify(s)).not.toContain(USER.password)
    await engine.close()
  })

  it('a job that ends while its status is being read is not taken for one that lost its end (nor one that starts)', async () => {
    const loading = { state: 'loading', progress: { bytesDone: 1, bytesTotal: 2 }, images: [], error: null, updatedAt: '' }
    for (const [before, after] of [[true, false], [false, true]]) {
      let running = before
      const state = { getItem: async () => { running = after; return loading } }
      expect((await readUnlock(state as never, { has: () => running })).state).toBe('loading')
    }
    // Neither before nor after: the job is gone and never wrote its end.
    expect((await readUnlock({ getItem: async () => loading } as never, { has: () => false })).state).toBe('error')
  })

  it('a state left unfinished by a previous process, on a disk now full: the start goes on and the status reads error', async () => {
    const engine = await startFakeEngine()
    const w = await world(engine, archives([randomBytes(100)]))
    await w.env.state.setItem('unlock:status', { state: 'loading', progress: { bytesDone: 5, bytesTotal: 10 }, images: [], error: null, updatedAt: '' })
    fullDisk(w)
    // The runtime awaits this before it serves: a throw would stop the loader from starting at all.
    await expect(recoverInterrupted(w.env)).resolves.toBeUndefined()
    expect(await w.status()).toMatchObject({ state: 'error' })
    expect((await (await w.app.request('/status')).json()).unlock).toMatchObject({ state: 'error' })
    await engine.close()
  })

  /** An engine on a unix socket that reads the whole upload, then answers with `answer`. */
  /** An engine on a unix socket that answers with `handle`, keeping idle connections (as a keep-alive engine may); `connections()` counts the open ones. */
  async function engineServer(handle: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) {
    const { createServer } = await import('node:http')
    const socket = join(tempDir('odd-engine-'), 'docker.sock')
    const srv = createServer(handle)
    srv.keepAliveTimeout = 600_000
    await new Promise<void>((r) => srv.listen(socket, r))
    return {
      socket,
      connections: () => new Promise<number>((ok) => srv.getConnections((_e, n) => ok(n))),
      close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()) }),
    }
  }

  /** An engine that reads the whole archive, then answers with `answer`. */
  const oddEngine = (answer: (res: import('node:http').ServerResponse) => void) => engineServer((req, res) => {
    req.resume()
    req.once('end', () => answer(res))
  })

  it.each([
    ['an empty 200', (res: import('node:http').ServerResponse) => res.writeHead(200).end()],
    ['a 200 of garbage', (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>OK</html>')],
    ['a 200 of JSON lines that name no image', (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"stream":"Loading layer 1/3"}\n{"status":"done"}\n')],
  ] as const)('an engine that answers %s loaded nothing: error, not ready', async (_what, answer) => {
    const engine = await oddEngine(answer)
    const w = await world(`unix://${engine.socket}`, archives([randomBytes(1000)]))
    await w.post()
    const s = await w.settle()
    expect(s.state).toBe('error')
    expect(s.error).toMatch(/00-image\.enc/)
    expect(s.images).toEqual([])
    await engine.close()
  })

  it('an engine that closes the socket in the middle of its answer: error saying so', async () => {
    const engine = await oddEngine((res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      res.write('{"stream":"Loaded image: localhost/a:1"}\n')
      setTimeout(() => res.socket?.destroy(), 20)
    })
    const w = await world(`unix://${engine.socket}`, archives([randomBytes(1000)]))
    await w.post()
    const s = await w.settle()
    expect(s.state).toBe('error')
    expect(s.error).toMatch(/closed the connection|00-image\.enc/)
    await engine.close()
  })

  it('an engine that refuses at once without reading the archive: error with its message, and the loader lets go of the connection', async () => {
    // Answers before reading a byte of the body and keeps the connection (node then reads and drops the rest of the body).
    const engine = await engineServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'no space left for images' }))
    })
    try {
      const dir = archives([randomBytes(32 << 20)])
      const w = await world(`unix://${engine.socket}`, dir)
      await w.post()
      const s = await w.settle()
      expect(s.state).toBe('error')
      expect(s.error).toMatch(/refused 00-image\.enc: no space left for images/)
      expect(await eventually(engine.connections, 0)).toBe(0)
      expect(await eventually(() => fdsUnder(dir), [])).toEqual([])
    } finally {
      await engine.close()
    }
  })

  it('an engine that answers success before it has read the whole archive: ready, and the archive file and the connection are let go', async () => {
    const engine = await engineServer((req, res) => {
      let got = 0
      req.on('data', (c: Buffer) => {
        got += c.length
        if (got >= 1 << 20 && !res.headersSent) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ stream: 'Loaded image: localhost/early:1' }) + '\n')
        }
      })
    })
    try {
      const dir = archives([randomBytes(32 << 20)])
      const w = await world(`unix://${engine.socket}`, dir)
      await w.post()
      expect(await w.settle()).toMatchObject({ state: 'ready', images: ['localhost/early:1'] })
      expect(await eventually(engine.connections, 0)).toBe(0)
      expect(await eventually(() => fdsUnder(dir), [])).toEqual([])
    } finally {
      await engine.close()
    }
  })

  it('an archive the loader cannot read is reported as that archive\'s problem, not as an unreachable engine or an "unexpected failure"', async () => {
    const engine = await startFakeEngine('podman', ['localhost/a:1'])
    const denied = () => Object.assign(new Error('EACCES: permission denied, open'), { code: 'EACCES', errno: -13, syscall: 'open' })
    // Unreadable when its last block is checked.
    const w = await world(engine, archives([randomBytes(1000)]))
    w.env.archives = { ...w.env.archives, tail: async () => { throw denied() } }
    await w.post()
    const s1 = await w.settle()
    expect(s1.state).toBe('error')
    expect(s1.error).toMatch(/00-image\.enc.*EACCES/)
    expect(s1.error).not.toMatch(/Docker engine|unexpected/)
    // Unreadable (or gone) once it streams into the engine.
    const w2 = await world(engine, archives([randomBytes(300_000)]))
    const open = w2.env.archives.open.bind(w2.env.archives)
    w2.env.archives = { ...w2.env.archives, open: (a) => {
      const src = open(a)
      const out = new PassThrough()
      src.once('data', (c) => { out.write(c); src.destroy(); setImmediate(() => out.destroy(denied())) })
      return out
    } }
    await w2.post()
    const s2 = await w2.settle()
    expect(s2.state).toBe('error')
    expect(s2.error).toMatch(/00-image\.enc.*EACCES/)
    expect(s2.error).not.toMatch(/Docker engine|unexpected/)
    await engine.close()
  })

  it('validates the body: 422 for bad fields, 415 for a wrong type', async () => {
    const engine = await startFakeEngine()
    const w = await world(engine, archives([randomBytes(100)]))
    expect((await w.post({ email: 'x', password: 'y' })).status).toBe(422)
    expect((await w.post({ ...USER, force: 'yes' })).status).toBe(422)
    expect((await w.app.request('/unlock', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(415)
    await engine.close()
  })
})

mkdirSync(tmpdir(), { recursive: true })
