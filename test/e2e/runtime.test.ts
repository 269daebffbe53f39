// The built runtime as a real process: start-up, /status, config errors, SIGTERM, redeploy of one function.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp'
import { ROOT, startLoader, type LoaderProcess } from '../helpers/spawn'
import { SALTS } from '../helpers/vectors'
import { MALLOC_TUNABLES } from '../../runtime/memory-settings'

let running: LoaderProcess[] = []
afterEach(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')))
  running = []
})
const start = async (vars: Record<string, string> = {}) => {
  const p = await startLoader(vars)
  running.push(p)
  return p
}

describe('built runtime', () => {
  it('answers /health within a second of starting and lists every function with its sha256', async () => {
    const t0 = Date.now()
    const p = await start()
    expect(Date.now() - t0).toBeLessThan(3000) // process spawn included; the figure is in the bench
    const s = await (await fetch(`${p.url}/status`)).json()
    const manifest = JSON.parse(readFileSync(join(ROOT, 'dist/manifest.json'), 'utf8'))
    expect(s.functions.map((f: { name: string }) => f.name).sort()).toEqual(['health', 'load', 'login', 'status', 'unlock', 'upload'])
    for (const f of s.functions) {
      const file = readFileSync(join(ROOT, 'dist/functions', `${f.name}.mjs`))
      expect(f.sha256).toBe(createHash('sha256').update(file).digest('hex'))
      expect(f.sha256).toBe(manifest.functions.find((m: { name: string }) => m.name === f.name).sha256)
      expect(Date.parse(f.loadedAt)).not.toBeNaN()
    }
  })

  it.each([
    ['PORT', 'eighty'],
    ['JWT_PUBLIC_KEY', '-----BEGIN PUBLIC KEY-----\\nnot-a-key\\n-----END PUBLIC KEY-----'],
    ['JWKS_URL', 'http://idp.example/jwks.json'],
    ['JWKS_URL', 'not a url'],
  ])('stops at start (exit 78) with one line naming a bad %s', (name, value) => {
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
      env: { PATH: process.env.PATH, ...SALTS, [name]: value }, encoding: 'utf8', timeout: 10_000,
    })
    expect(r.status).toBe(78)
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^loader: configuration error: ${name}: `))])
  })

  it.each([
    ['HOST', { HOST: 'no-such-host.invalid', LOADER_API_TOKEN: 'caller-token-0123456789' }, /^loader: configuration error: HOST: no-such-host\.invalid does not resolve/],
    ['HOST', { HOST: '192.0.2.1', LOADER_API_TOKEN: 'caller-token-0123456789' }, /^loader: configuration error: HOST: 192\.0\.2\.1 is not an address of this machine/],
    ['PORT', { PORT: 'in-use' }, /^loader: configuration error: PORT: port \d+ on 127\.0\.0\.1 is in use by another process/],
  ])('stops at start (exit 78) naming %s when it cannot listen', async (_name, vars, line) => {
    // A port in use: taken by a server of this test first.
    const blocker = createServer()
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', ok))
    const port = String((blocker.address() as AddressInfo).port)
    try {
      const given = vars as Record<string, string>
      const env = { ...given, PORT: given.PORT === 'in-use' ? port : '0' }
      const r = spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
        env: { PATH: process.env.PATH, ...SALTS, CACHE_DIR: tempDir('l-'), ...env }, encoding: 'utf8', timeout: 10_000,
      })
      expect(r.status).toBe(78)
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(line)])
    } finally {
      blocker.close()
    }
  })

  it('stops at start (exit 78) naming ADMIN_PORT when it is in use, leaving neither the lock nor the admin socket', async () => {
    const blocker = createServer()
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', ok))
    const dir = tempDir('admin-port-')
    const cache = join(dir, 'cache')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1',
      '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1'], { stdio: 'ignore' })
    try {
      const r = spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
        env: { PATH: process.env.PATH, ...SALTS, CACHE_DIR: cache, PORT: '0', ADMIN_PORT: String((blocker.address() as AddressInfo).port), ADMIN_TOKEN: 'a'.repeat(40),
          TLS_CERT_FILE: join(dir, 'c.pem'), TLS_KEY_FILE: join(dir, 'k.pem'), LOADER_API_TOKEN: 'caller-token-0123456789' },
        encoding: 'utf8', timeout: 15_000,
      })
      expect(r.status).toBe(78)
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^loader: configuration error: ADMIN_PORT: port \d+ on 127\.0\.0\.1 is in use/)])
      expect(existsSync(join(cache, 'loader.lock'))).toBe(false)
      expect(existsSync(join(cache, 'admin.sock'))).toBe(false)
    } finally {
      blocker.close()
    }
  })

  it('refuses a non-loopback address without a caller token', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
      env: { PATH: process.env.PATH, ...SALTS, HOST: '0.0.0.0', PORT: '0', CACHE_DIR: tempDir('l-') }, encoding: 'utf8', timeout: 10_000,
    })
    expect(r.status).toBe(78)
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^loader: configuration error: HOST: 0\.0\.0\.0 is not loopback; set LOADER_API_TOKEN/)])
  })

  it('runs with the allocator settings of npm start and the container, and warns without them', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
    expect(pkg.scripts.start).toBe(`GLIBC_TUNABLES=${MALLOC_TUNABLES} node dist/runtime.mjs`)
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain(`GLIBC_TUNABLES=${MALLOC_TUNABLES}\n`)
    const tuned = await start()
    await new Promise((r) => setTimeout(r, 300))
    expect(tuned.output()).not.toContain('allocator settings')
    expect((await (await fetch(`${tuned.url}/status`)).json()).warnings.join()).not.toContain('allocator')
    const plain = await start({ GLIBC_TUNABLES: '' })
    // The check runs just after the listening line (setImmediate): wait for its line, bounded.
    for (let i = 0; i < 100 && !plain.output().includes('started without the allocator settings'); i++) await new Promise((r) => setTimeout(r, 50))
    expect(plain.output()).toContain('started without the allocator settings')
    expect((await (await fetch(`${plain.url}/status`)).json()).warnings.join()).toContain('GLIBC_TUNABLES=')
  })

  it('exits cleanly on SIGTERM', async () => {
    const p = await start()
    expect(await p.stop('SIGTERM')).toBe(0)
    expect(p.output()).toContain('shutting down')
  })

  it('a SIGTERM that arrives while it starts is honoured once started: exit 0, not killed by the signal', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, GLIBC_TUNABLES: MALLOC_TUNABLES, ...SALTS, HARDWARE_FINGERPRINT: 'test', PORT: '0', CACHE_DIR: tempDir('loader-e2e-'), LOG_LEVEL: 'info' },
    })
    let out = ''
    const exited = new Promise<[number | null, string | null]>((ok) => child.once('exit', (code, signal) => ok([code, signal])))
    // The first log line (a start-up warning) comes long before the loader listens.
    await new Promise<void>((ok) => child.stdout!.on('data', (d) => { out += d; if (out.includes('"level"')) ok() }))
    child.stderr!.on('data', (d) => { out += d })
    child.kill('SIGTERM')
    expect(await exited).toEqual([0, null])
    expect(out).toContain('shutting down')
  })

  it('SIGTERM with a request still in flight after SHUTDOWN_GRACE_MS: the connection is cut and the process exits 0', async () => {
    const p = await start({ SHUTDOWN_GRACE_MS: '500' })
    // A client that sends half a JSON body and then nothing: its request never ends by itself.
    const client = new Promise<string>((ok) => {
      const req = request(`${p.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '1000' } }, (res) => ok(`answered ${res.statusCode}`))
      req.once('error', (e) => ok(`cut (${(e as NodeJS.ErrnoException).code})`))
      req.write('{"email":"a@b.co",')
    })
    // Time for the server to take the request in (nothing to wait on: it has not ended).
    await new Promise((r) => setTimeout(r, 1000))
    p.child.kill('SIGTERM')
    const exited = await Promise.race([p.stop(), new Promise((r) => setTimeout(() => r('still running'), 20_000))])
    expect(exited).toBe(0)
    expect(p.output()).toContain('shutdown grace period over')
    expect(await client).toMatch(/^cut/)
  })
})

describe('redeploy of one function', () => {
  /** A copy of the sources whose `health` function can be rewritten and rebuilt into `out`. */
  function sourceCopy(out: string) {
    const dir = tempDir('loader-src-')
    for (const p of ['functions', 'shared', 'runtime', 'build.mjs', 'package.json']) cpSync(join(ROOT, p), join(dir, p), { recursive: true })
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
    const writeHealth = (version: string) => writeFileSync(join(dir, 'functions/health/index.ts'), `
      import type { LoaderFunction } from '../../shared/contract/function'
      export default {
        name: 'health',
        routes: [{ method: 'GET', path: '/health', body: 'none', public: true }],
        async fetch(request, env) {
          const wait = Number(new URL(request.url).searchParams.get('wait') ?? 0)
          if (wait) await new Promise((r) => setTimeout(r, wait))
          const seen = await env.session.getItem('probe')
          await env.session.setItem('probe', '${version}')
          return Response.json({ status: 'healthy', version: '${version}', seen })
        },
      } satisfies LoaderFunction`)
    const build = (name?: string) => execFileSync(process.execPath, ['build.mjs', ...(name ? [name] : [])], { cwd: dir, env: { ...process.env, BUILD_OUT_DIR: out } })
    return { writeHealth, build }
  }

  it('swaps in a rebuilt artifact without a restart; in-flight requests finish on the old code; session survives', async () => {
    const out = tempDir('loader-dist-')
    const src = sourceCopy(out)
    src.writeHealth('one')
    src.build()
    const p = await start({ FUNCTIONS_DIR: out })
    const pid = p.child.pid
    expect(await (await fetch(`${p.url}/health`)).json()).toMatchObject({ version: 'one' })
    const slow = fetch(`${p.url}/health?wait=1500`).then((r) => r.json())
    await new Promise((r) => setTimeout(r, 200))
    src.writeHealth('two')
    src.build('health')
    let now: { version?: string; seen?: string } = {}
    for (let i = 0; i < 100 && now.version !== 'two'; i++) {
      await new Promise((r) => setTimeout(r, 50))
      now = await (await fetch(`${p.url}/health`)).json()
    }
    expect(now).toMatchObject({ version: 'two', seen: 'one' })
    expect(await slow).toMatchObject({ version: 'one' })
    expect(p.child.pid).toBe(pid)
    const status = await (await fetch(`${p.url}/status`)).json()
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))
    expect(status.functions.find((f: { name: string }) => f.name === 'health').sha256)
      .toBe(manifest.functions.find((f: { name: string }) => f.name === 'health').sha256)
  })

  it('reloads on SIGHUP and keeps the old code when an artifact does not match its manifest', async () => {
    const out = tempDir('loader-dist-')
    const src = sourceCopy(out)
    src.writeHealth('one')
    src.build()
    const p = await start({ FUNCTIONS_DIR: out })
    // A manifest that names new bytes the artifact does not have (a half-written redeploy): refused.
    const mpath = join(out, 'manifest.json')
    const m = JSON.parse(readFileSync(mpath, 'utf8'))
    m.functions.find((f: { name: string }) => f.name === 'health').sha256 = 'f'.repeat(64)
    writeFileSync(mpath, JSON.stringify(m))
    p.child.kill('SIGHUP')
    await new Promise((r) => setTimeout(r, 500))
    expect(await (await fetch(`${p.url}/health`)).json()).toMatchObject({ version: 'one' })
    expect(p.output()).toContain('reload skipped')
    src.writeHealth('two')
    src.build('health')
    p.child.kill('SIGHUP')
    let now: { version?: string } = {}
    for (let i = 0; i < 60 && now.version !== 'two'; i++) {
      await new Promise((r) => setTimeout(r, 50))
      now = await (await fetch(`${p.url}/health`)).json()
    }
    expect(now.version).toBe('two')
  })
})
