// Field deployment end to end (deploy.md §5): the built runtime as a real process, key pairs made
// here, releases pushed over the unix socket and over TLS with the admin token.
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { httpsFetch } from '../helpers/tls'
import { freePort, ROOT, startLoader, type LoaderProcess } from '../helpers/spawn'
import { post, startStack, type Stack } from '../helpers/stack'
import { SALTS } from '../helpers/vectors'
import { makeRelease } from '../../scripts/release-files'
import {
  admin, HEALTH_ROUTES, healthArtifact, keyPair, plainArtifact, push, releaseParts, selfSignedCert, socketOf, tempDir, until,
} from '../helpers/deploy'

const dirs: string[] = []
const tmp = () => {
  const d = tempDir()
  dirs.push(d)
  return d
}
let running: LoaderProcess[] = []
const start = async (vars: Record<string, string>) => {
  const p = await startLoader(vars)
  running.push(p)
  dirs.push(p.cacheDir)
  return p
}
afterEach(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')))
  running = []
})
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const keysDir = tmp()
const key = keyPair(keysDir)
const other = keyPair(keysDir, 'other-key')
const TSX = join(ROOT, 'node_modules/tsx/dist/cli.mjs')

const health = async (p: LoaderProcess, q = '') => {
  const r = await fetch(`${p.url}/health${q}`)
  return { status: r.status, body: r.status < 300 ? await r.json() : await r.text() }
}
const storeListing = (p: LoaderProcess) => {
  const root = join(p.cacheDir, 'functions')
  const out: string[] = []
  for (const d of readdirSync(root)) {
    if (statSync(join(root, d)).isDirectory()) for (const v of readdirSync(join(root, d))) out.push(`${d}/${v}`)
  }
  return out.sort()
}
const journal = (p: LoaderProcess) => readFileSync(join(p.cacheDir, 'functions/journal.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))

/** Pushes a health release and waits for its end state. */
async function deployHealth(p: LoaderProcess, version: number, text: string, end = ['committed']) {
  const r = await push(socketOf(p.cacheDir), releaseParts({ name: 'health', artifact: healthArtifact(text), routes: HEALTH_ROUTES, version, key: key.privateKey }))
  expect(r.status, JSON.stringify(r.body)).toBe(202)
  return until(socketOf(p.cacheDir), r.body.id!, end)
}

describe('releases refused with a clear reason and nothing changed', () => {
  let p: LoaderProcess
  beforeAll(async () => {
    p = await startLoader({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1', ADMIN_BODY_MAX_BYTES: '65536' })
    dirs.push(p.cacheDir)
    await deployHealth(p, 10, 'ten')
  })
  afterAll(() => p.stop('SIGKILL'))

  const sock = () => socketOf(p.cacheDir)
  const good = (version = 11) => releaseParts({ name: 'health', artifact: healthArtifact('eleven'), routes: HEALTH_ROUTES, version, key: key.privateKey })
  const big = () => releaseParts({ name: 'health', artifact: Buffer.concat([healthArtifact('big'), Buffer.from(`//${'x'.repeat(70_000)}\n`)]), routes: HEALTH_ROUTES, version: 11, key: key.privateKey })
  const cases: [string, () => [string, Uint8Array][], number, RegExp, boolean?][] = [
    ['wrong key', () => releaseParts({ name: 'health', artifact: healthArtifact('x'), routes: HEALTH_ROUTES, version: 11, key: other.privateKey }), 422, /signature does not verify/],
    ['edited release.json', () => {
      const parts = good()
      parts[0][1] = Buffer.from(Buffer.from(parts[0][1]).toString().replace('"version": 11', '"version": 12'))
      return parts
    }, 422, /signature does not verify/],
    ['swapped artifact', () => {
      const parts = good()
      parts[2][1] = healthArtifact('swapped')
      return parts
    }, 422, /sha256 .* is not the signed/],
    ['name mismatch', () => releaseParts({ name: 'health', artifact: healthArtifact('x'), routes: HEALTH_ROUTES, version: 11, key: key.privateKey, partName: 'status' }), 422, /^status: release.json names the function health/],
    ['downgrade', () => good(9), 422, /version 9 is not above 10/],
    ['same version again', () => good(10), 422, /version 10 is not above 10/],
    ['unknown contract', () => releaseParts({ name: 'health', artifact: healthArtifact('x'), routes: HEALTH_ROUTES, version: 11, key: key.privateKey, contract: 99 }), 422, /contract 99 is not served/],
    ['route collision', () => {
      const routes = [...HEALTH_ROUTES, { method: 'GET' as const, path: '/status', body: 'none' as const }]
      return releaseParts({ name: 'health', artifact: healthArtifact('x'), routes, version: 11, key: key.privateKey })
    }, 422, /route GET \/status is already served by status/],
    ['oversized body (declared length)', big, 413, /ADMIN_BODY_MAX_BYTES/],
    ['oversized body (chunked, no length)', big, 413, /ADMIN_BODY_MAX_BYTES/, true],
    ['missing part', () => good().slice(0, 2), 422, /needs the parts/],
    ['one bad part of a multi-function deployment', () => [
      ...good(),
      ...releaseParts({ name: 'probe', artifact: plainArtifact('probe', 'p1'), routes: [{ method: 'GET', path: '/probe', body: 'none' }], version: 1, key: other.privateKey }),
    ], 422, /^probe: the signature does not verify/],
  ]
  for (const [what, parts, status, reason, chunked] of cases) {
    it(`refuses: ${what}`, async () => {
      const before = { fns: (await admin(sock(), 'GET', '/admin/functions')).json(), store: storeListing(p), state: readFileSync(join(p.cacheDir, 'functions/state.json'), 'utf8') }
      const r = await push(sock(), parts(), chunked)
      expect(r.status).toBe(status)
      expect(r.type).toBe('application/problem+json')
      expect(r.body.detail).toMatch(reason)
      expect((await admin(sock(), 'GET', '/admin/functions')).json()).toEqual(before.fns)
      expect(storeListing(p)).toEqual(before.store)
      expect(readFileSync(join(p.cacheDir, 'functions/state.json'), 'utf8')).toBe(before.state)
      expect(readdirSync(join(p.cacheDir, 'tmp/releases'))).toEqual([])
      expect(await health(p)).toMatchObject({ status: 200, body: { version: 'ten' } })
      expect(await fetch(`${p.url}/probe`).then((r) => r.status)).toBe(404)
      if (status === 422) expect(journal(p).at(-1)).toMatchObject({ event: 'rejected', reason: r.body.detail, function: expect.stringMatching(/^(health|status|probe)$/) })
      // A body refused before it was a deployment is journaled too (deploy.md §3: any failure).
      else expect(journal(p).at(-1)).toMatchObject({ event: 'rejected', function: null, reason: `${status}: ${r.body.detail}` })
    })
  }

  it('keeps an intact hash chain, and says where an edited line breaks it', async () => {
    expect((await admin(sock(), 'GET', '/admin/journal?verify=1')).json()).toEqual({ intact: true })
    const text = (await admin(sock(), 'GET', '/admin/journal')).text
    const lines = text.trim().split('\n')
    expect(lines.length).toBeGreaterThanOrEqual(3)
    expect(JSON.parse(lines[0]).prev).toBe('0'.repeat(64))
    const file = join(p.cacheDir, 'functions/journal.ndjson')
    lines[1] = lines[1].replace(/"at":"[^"]+"/, '"at":"2000-01-01T00:00:00.000Z"')
    writeFileSync(file, lines.join('\n') + '\n')
    expect((await admin(sock(), 'GET', '/admin/journal?verify=1')).json()).toEqual({ intact: false, brokenAt: 3 })
  })
})

describe('activation, trial and rollback', () => {
  it('an artifact that throws at import is rejected and the old code serves; a selfTest gates; requests in flight finish on the old code', async () => {
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1' })
    await deployHealth(p, 1, 'old')
    const r = await push(socketOf(p.cacheDir), releaseParts({ name: 'health', artifact: healthArtifact('boom', { top: "throw new Error('boom at import')" }), routes: HEALTH_ROUTES, version: 2, key: key.privateKey }))
    expect(r.status).toBe(202)
    const dep = await until(socketOf(p.cacheDir), r.body.id!, ['rejected', 'trial', 'committed'])
    expect(dep).toMatchObject({ state: 'rejected', reason: expect.stringContaining('boom at import') })
    expect(await health(p)).toMatchObject({ body: { version: 'old' } })
    expect(storeListing(p).filter((s) => s.startsWith('health/2-'))).toEqual([])
    // A failing selfTest rejects too; a passing one lets the release in.
    const st = await push(socketOf(p.cacheDir), releaseParts({ name: 'health', artifact: healthArtifact('selftest', { extra: "async selfTest(env) { if (!env.session) throw new Error('no session'); throw new Error('self test says no') }," }), routes: HEALTH_ROUTES, version: 3, key: key.privateKey }))
    expect(await until(socketOf(p.cacheDir), st.body.id!, ['rejected', 'committed'])).toMatchObject({ state: 'rejected', reason: expect.stringContaining('self test says no') })
    // A request in flight during the swap finishes on the old code.
    const slow = health(p, '?wait=1500')
    await new Promise((r) => setTimeout(r, 200))
    expect(await deployHealth(p, 4, 'tested', ['trial', 'committed'])).toMatchObject({ state: expect.stringMatching(/trial|committed/) })
    expect(await health(p)).toMatchObject({ body: { version: 'tested' } })
    expect(await slow).toMatchObject({ status: 200, body: { version: 'old' } })
  })

  it('a release whose fetch answers 500 is rolled back as a whole within the window; 4xx do not count', async () => {
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '120', DEPLOY_TRIAL_MAX_ERRORS: '3' })
    const sock = socketOf(p.cacheDir)
    const factory = await health(p)
    const r = await push(sock, [
      ...releaseParts({ name: 'health', artifact: healthArtifact('bad'), routes: HEALTH_ROUTES, version: 7, key: key.privateKey }),
      ...releaseParts({ name: 'probe', artifact: plainArtifact('probe', 'p1'), routes: [{ method: 'GET', path: '/probe', body: 'none' }], version: 1, key: key.privateKey }),
    ])
    expect(r.status).toBe(202)
    await until(sock, r.body.id!, ['trial'])
    expect(await health(p)).toMatchObject({ body: { version: 'bad' } })
    expect(await (await fetch(`${p.url}/probe`)).json()).toEqual({ name: 'probe', version: 'p1' })
    const status = await (await fetch(`${p.url}/status`)).json()
    expect(status.functions.find((f: { name: string }) => f.name === 'health')).toMatchObject({ version: 7, source: 'store', trial: true })
    for (let i = 0; i < 5; i++) expect((await health(p, '?bad=1')).status).toBe(400)
    expect((await admin(sock, 'GET', `/admin/deployments/${r.body.id}`)).json().state).toBe('trial')
    expect((await health(p, '?fail=1')).status).toBe(500)
    expect((await health(p, '?throw=1')).status).toBe(500)
    expect((await admin(sock, 'GET', `/admin/deployments/${r.body.id}`)).json().state).toBe('trial')
    expect((await health(p, '?fail=1')).status).toBe(500)
    const dep = await until(sock, r.body.id!, ['rolled_back'], 10_000)
    expect(dep.reason).toMatch(/health: 3 errors during the trial \(500, 500, 500\)/)
    expect(await health(p)).toEqual(factory)
    expect((await fetch(`${p.url}/probe`)).status).toBe(404)
    const fns = (await admin(sock, 'GET', '/admin/functions')).json().functions
    expect(fns.find((f: { name: string }) => f.name === 'health')).toMatchObject({ active: 'factory', trial: null, highest: 7 })
    expect(journal(p).filter((e) => e.event === 'rolled_back').map((e) => e.function).sort()).toEqual(['health', 'probe'])
  })

  it('restart after a commit runs the store version; a kill during a trial runs the previous one', async () => {
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1' })
    await deployHealth(p, 1, 'one')
    await p.stop('SIGTERM')
    const q = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '300', CACHE_DIR: p.cacheDir })
    expect(await health(q)).toMatchObject({ body: { version: 'one' } })
    const st = await (await fetch(`${q.url}/status`)).json()
    expect(st.functions.find((f: { name: string }) => f.name === 'health')).toMatchObject({ version: 1, source: 'store', trial: false })
    await deployHealth(q, 2, 'two', ['trial'])
    expect(await health(q)).toMatchObject({ body: { version: 'two' } })
    await q.stop('SIGKILL') // dies during the trial; its socket file stays behind
    const r = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1', CACHE_DIR: p.cacheDir })
    expect(await health(r)).toMatchObject({ body: { version: 'one' } })
    expect(statSync(join(r.cacheDir, 'admin.sock')).mode & 0o777).toBe(0o600)
    const fns = (await admin(socketOf(r.cacheDir), 'GET', '/admin/functions')).json().functions
    expect(fns.find((f: { name: string }) => f.name === 'health')).toMatchObject({ active: 1, lastKnownGood: 1, trial: null, highest: 2 })
    expect(journal(r).at(-1)).toMatchObject({ event: 'rolled_back', function: 'health', version: 2, reason: 'the process stopped during the trial' })
  })

  it('an active artifact corrupted on disk: previous, then factory run, and the start succeeds', async () => {
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1' })
    const factory = await health(p)
    await deployHealth(p, 1, 'one')
    await deployHealth(p, 2, 'two')
    await p.stop('SIGTERM')
    const corrupt = (v: number) => {
      const dir = readdirSync(join(p.cacheDir, 'functions/health')).find((d) => d.startsWith(`${v}-`))!
      writeFileSync(join(p.cacheDir, 'functions/health', dir, 'health.mjs'), "throw new Error('corrupted')")
    }
    corrupt(2)
    const q = await start({ RELEASE_KEYS: key.pubFile, CACHE_DIR: p.cacheDir })
    expect(await health(q)).toMatchObject({ body: { version: 'one' } })
    const st = await (await fetch(`${q.url}/status`)).json()
    expect(st.warnings.join('\n')).toMatch(/fallback at start: health: 2: health: the artifact's sha256 .* is not the signed/)
    expect(journal(q).at(-1)).toMatchObject({ event: 'fallback_at_start', function: 'health', version: 1 })
    // A rollback target must still verify.
    const rb = await admin(socketOf(q.cacheDir), 'POST', '/admin/functions/health/rollback', { version: 2 })
    expect(rb.status).toBe(422)
    expect(rb.json().detail).toMatch(/sha256 .* is not the signed/)
    expect(await health(q)).toMatchObject({ body: { version: 'one' } })
    await q.stop('SIGTERM')
    // Without RELEASE_KEYS (a recreated container that lost them) the factory set runs, and /status says
    // which releases do not; with the keys again, the release that ran comes back.
    const keyless = await start({ CACHE_DIR: p.cacheDir })
    expect(await health(keyless)).toEqual(factory)
    expect((await (await fetch(`${keyless.url}/status`)).json()).warnings.join('\n')).toMatch(/RELEASE_KEYS is not set: the deployed releases health 1 do not run/)
    await keyless.stop('SIGTERM')
    const keyed = await start({ RELEASE_KEYS: key.pubFile, CACHE_DIR: p.cacheDir })
    expect(await health(keyed)).toMatchObject({ body: { version: 'one' } })
    await keyed.stop('SIGTERM')
    corrupt(1)
    const r = await start({ RELEASE_KEYS: key.pubFile, CACHE_DIR: p.cacheDir })
    expect(await health(r)).toEqual(factory)
    expect((await (await fetch(`${r.url}/status`)).json()).functions.find((f: { name: string }) => f.name === 'health')).toMatchObject({ version: 'factory', source: 'factory' })
    await r.stop('SIGTERM')
    // An unreadable pointer file: the factory set runs, and the store's versions keep the downgrade floor.
    writeFileSync(join(p.cacheDir, 'functions/state.json'), '{"functions": {"health": ')
    const t = await start({ RELEASE_KEYS: key.pubFile, CACHE_DIR: p.cacheDir })
    expect(await health(t)).toEqual(factory)
    expect((await (await fetch(`${t.url}/status`)).json()).warnings.join('\n')).toMatch(/state.json is unreadable/)
    const again = await push(socketOf(t.cacheDir), releaseParts({ name: 'health', artifact: healthArtifact('x'), routes: HEALTH_ROUTES, version: 2, key: key.privateKey }))
    expect(again.body.detail).toMatch(/version 2 is not above 2/)
  })

  it('a rollback asked during a trial rolls the whole deployment back', async () => {
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '120' })
    const sock = socketOf(p.cacheDir)
    const r = await push(sock, [
      ...releaseParts({ name: 'health', artifact: healthArtifact('new'), routes: HEALTH_ROUTES, version: 3, key: key.privateKey }),
      ...releaseParts({ name: 'probe', artifact: plainArtifact('probe', 'p1'), routes: [{ method: 'GET', path: '/probe', body: 'none' }], version: 1, key: key.privateKey }),
    ])
    await until(sock, r.body.id!, ['trial'])
    expect((await push(sock, releaseParts({ name: 'health', artifact: healthArtifact('other'), routes: HEALTH_ROUTES, version: 4, key: key.privateKey }))).status).toBe(409)
    expect((await admin(sock, 'POST', '/admin/functions/probe/rollback', {})).status).toBe(200)
    expect(await until(sock, r.body.id!, ['rolled_back'])).toMatchObject({ reason: 'rollback of probe requested during the trial' })
    expect((await health(p)).body).toEqual({ status: 'healthy' })
    expect((await fetch(`${p.url}/probe`)).status).toBe(404)
    await p.stop('SIGTERM')
    // The function only the store had is gone after a restart too, without a warning.
    const q = await start({ RELEASE_KEYS: key.pubFile, CACHE_DIR: p.cacheDir })
    expect((await fetch(`${q.url}/probe`)).status).toBe(404)
    expect((await (await fetch(`${q.url}/status`)).json()).warnings.join('\n')).not.toMatch(/fallback/)
  })

  it('a factory artifact that throws at import no longer stops the start', async () => {
    const dist = tmp()
    cpSync(join(ROOT, 'dist'), dist, { recursive: true, filter: (s) => !s.includes('/releases') })
    const manifest = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8'))
    const bad = Buffer.from("throw new Error('upload is broken')\n")
    writeFileSync(join(dist, 'functions/upload.mjs'), bad)
    const entry = manifest.functions.find((f: { name: string }) => f.name === 'upload')
    entry.sha256 = (await import('node:crypto')).createHash('sha256').update(bad).digest('hex')
    writeFileSync(join(dist, 'manifest.json'), JSON.stringify(manifest))
    const p = await start({ FUNCTIONS_DIR: dist })
    expect((await health(p)).status).toBe(200)
    const st = await (await fetch(`${p.url}/status`)).json()
    expect(st.functions.map((f: { name: string }) => f.name)).not.toContain('upload')
    expect(st.warnings.join('\n')).toMatch(/upload: no artifact could be loaded .*upload is broken/)
    expect(journal(p).at(-1)).toMatchObject({ event: 'fallback_at_start', function: 'upload', version: null })
  })

  it('deploys are off without RELEASE_KEYS', async () => {
    const p = await start({})
    const r = await push(socketOf(p.cacheDir), releaseParts({ name: 'health', artifact: healthArtifact('x'), routes: HEALTH_ROUTES, version: 1, key: key.privateKey }))
    expect(r.status).toBe(503)
    expect(r.body.detail).toMatch(/RELEASE_KEYS/)
    expect((await admin(socketOf(p.cacheDir), 'GET', '/admin/functions')).status).toBe(503)
  })
})

describe('the tools, a logged-in session and an unlock state', () => {
  let s: Stack
  const ADMIN = ['admin@example.com', 'admin-password']
  beforeAll(async () => {
    s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'ApiAdmin'] }, { RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1', UNLOCK_ARCHIVE: '/nonexistent/archive.enc' })
  })
  afterAll(async () => {
    await s.stop()
    rmSync(s.loader.cacheDir, { recursive: true, force: true })
  })

  it('keygen, release and deploy over the unix socket; rollback with the Resource API and the CDN stopped; session and unlock state survive', async () => {
    const url = s.loader.url
    expect((await post(url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
    const unlock = await post(url, '/unlock', { email: ADMIN[0], password: ADMIN[1] })
    expect(unlock.status).toBe(202)
    let unlockState: { state?: string } = {}
    for (let i = 0; i < 100 && !['error', 'ready'].includes(unlockState.state ?? ''); i++) {
      await new Promise((r) => setTimeout(r, 50))
      unlockState = await (await fetch(`${url}/unlock/status`)).json()
    }
    expect(unlockState.state).toBe('error')
    const dir = tmp()
    const tool = (script: string, ...args: string[]) => spawnSync(process.execPath, [TSX, join(ROOT, 'scripts', script), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 })
    const kg = tool('keygen.ts', join(dir, 'keys'))
    expect(kg.status, kg.stderr).toBe(0)
    expect(statSync(join(dir, 'keys/release-key.pem')).mode & 0o777).toBe(0o600)
    // The device trusts the test key and this one (rotation: current and next).
    writeFileSync(key.pubFile, key.pubPem + readFileSync(join(dir, 'keys/release-key.pub.pem'), 'utf8'))
    await s.restartLoader()
    expect((await post(s.loader.url, '/login', { email: ADMIN[0], password: ADMIN[1] })).status).toBe(200)
    const rel = (v: string) => tool('release.ts', 'status', '--key', join(dir, 'keys/release-key.pem'), '--version', v, '--out', join(dir, 'releases'))
    expect(rel('100').status).toBe(0)
    const rj = JSON.parse(readFileSync(join(dir, 'releases/status-100/release.json'), 'utf8'))
    expect(rj).toMatchObject({ v: 1, function: 'status', version: 100, contract: 1, routes: [{ method: 'GET', path: '/status' }] })
    const sock = `unix://${join(s.loader.cacheDir, 'admin.sock')}`
    const dep = tool('deploy.ts', 'status', '--to', sock, '--releases', join(dir, 'releases'))
    expect(dep.status, dep.stdout + dep.stderr).toBe(0)
    expect(dep.stdout).toMatch(/trial[\s\S]*committed/)
    const after = await (await fetch(`${s.loader.url}/status`)).json()
    expect(after.functions.find((f: { name: string }) => f.name === 'status')).toMatchObject({ version: 100, source: 'store', sha256: rj.sha256 })
    expect(rel('101').status).toBe(0)
    expect(tool('deploy.ts', 'status', '--to', sock, '--releases', join(dir, 'releases')).status).toBe(0)
    await survivesAt(s.loader.url)
    // A refused deploy exits non-zero with the reason.
    const again = tool('deploy.ts', 'status', '--to', sock, '--releases', join(dir, 'releases'))
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/refused \(422\): status: version 101 is not above 101/)

    await s.stopUpstreams()
    const rb = await admin({ to: sock }, 'POST', '/admin/functions/status/rollback', {})
    expect(rb.status).toBe(200)
    expect(rb.json()).toMatchObject({ active: 100, previous: 101 })
    const st = await survivesAt(s.loader.url)
    expect(st.functions.find((f: { name: string }) => f.name === 'status')).toMatchObject({ version: 100, source: 'store' })
    const toFactory = await admin({ to: sock }, 'POST', '/admin/functions/status/rollback', { version: 'factory' })
    expect(toFactory.json()).toMatchObject({ active: 'factory', previous: 100 })
    expect((await survivesAt(s.loader.url)).functions.find((f: { name: string }) => f.name === 'status')).toMatchObject({ version: 'factory' })
    expect((await admin({ to: sock }, 'POST', '/admin/functions/status/rollback', { version: 5 })).json().detail).toMatch(/release 5 is not on the device/)
    expect(journal(s.loader).filter((e) => e.event === 'rolled_back').map((e) => e.version)).toEqual([100, 'factory'])

    async function survivesAt(u: string) {
      // A kept-alive connection idle for ~5 s can be closed by the server as the client reuses it: ask again once.
      const st2 = await (await fetch(`${u}/status`).catch(() => fetch(`${u}/status`))).json()
      expect(st2).toMatchObject({ authenticated: true, user: { email: ADMIN[0] }, cdn: 'configured' })
      expect(await (await fetch(`${u}/unlock/status`)).json()).toEqual(unlockState)
      return st2
    }
  })
})

describe('the admin port: TLS and ADMIN_TOKEN only', () => {
  it('deploys over TLS with the admin token; the callers\' token never opens it, the admin token never opens the callers\' routes', async () => {
    const dir = tmp()
    const tls = selfSignedCert(dir)
    const ADMIN_TOKEN = 'admin-token-0123456789-0123456789-abcdef'
    const LOADER_API_TOKEN = 'caller-token-0123456789'
    writeFileSync(join(dir, 'token'), ADMIN_TOKEN + '\n')
    const port = await freePort()
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1', ADMIN_PORT: String(port), ADMIN_TOKEN, LOADER_API_TOKEN,
      TLS_CERT_FILE: tls.cert, TLS_KEY_FILE: tls.key })
    const ca = readFileSync(tls.cert)
    // TLS_CERT_FILE makes the callers' port HTTPS too (one certificate for both ports).
    const callersHealth = async () => JSON.parse((await httpsFetch(`${p.url}/health`, { ca })).body.toString())
    const to = `https://127.0.0.1:${port}`
    expect((await admin({ to, ca }, 'GET', '/admin/functions')).status).toBe(401)
    const callers = await admin({ to, ca, token: LOADER_API_TOKEN }, 'GET', '/admin/functions')
    expect(callers.status).toBe(401)
    expect(callers.type).toBe('application/problem+json')
    const refused = await push({ to, ca, token: LOADER_API_TOKEN }, releaseParts({ name: 'health', artifact: healthArtifact('x'), routes: HEALTH_ROUTES, version: 1, key: key.privateKey }))
    expect(refused.status).toBe(401)
    expect((await httpsFetch(`${p.url}/status`, { ca }, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(401)
    const r = await push({ to, ca, token: ADMIN_TOKEN }, releaseParts({ name: 'health', artifact: healthArtifact('tls'), routes: HEALTH_ROUTES, version: 1, key: key.privateKey }))
    expect(r.status).toBe(202)
    expect(await until({ to, ca, token: ADMIN_TOKEN }, r.body.id!, ['committed'])).toMatchObject({ state: 'committed' })
    expect(await callersHealth()).toMatchObject({ version: 'tls' })
    // The deploy tool over TLS, with --token-file and --ca.
    const rel = join(dir, 'releases/health-2')
    mkdirSync(rel, { recursive: true })
    const parts = releaseParts({ name: 'health', artifact: healthArtifact('tool over tls'), routes: HEALTH_ROUTES, version: 2, key: key.privateKey })
    for (const [part, bytes] of parts) writeFileSync(join(rel, part.replace(/^health\.release\./, 'release.')), bytes)
    const tool = spawnSync(process.execPath, [TSX, join(ROOT, 'scripts/deploy.ts'), 'health', '--to', to, '--token-file', join(dir, 'token'), '--ca', tls.cert,
      '--releases', join(dir, 'releases')], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 })
    expect(tool.status, tool.stdout + tool.stderr).toBe(0)
    expect(await callersHealth()).toMatchObject({ version: 'tool over tls' })
    // TLS 1.2 is served, TLS 1.1 is not (minVersion; Node's OpenSSL build refuses 1.1 by itself too).
    const probe = (v: string) => spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, v, '-cipher', 'DEFAULT@SECLEVEL=0'], { input: '', encoding: 'utf8', timeout: 10_000 }).status
    expect(probe('-tls1_2')).toBe(0)
    expect(probe('-tls1_1')).not.toBe(0)
  })

  it('refuses to start with ADMIN_PORT but no TLS or no ADMIN_TOKEN (exit 78)', () => {
    for (const [vars, what] of [
      [{ ADMIN_PORT: '9999', ADMIN_TOKEN: 'a'.repeat(40) }, /^loader: configuration error: TLS_CERT_FILE: ADMIN_PORT is served over TLS only/],
      [{ ADMIN_PORT: '9999', TLS_CERT_FILE: '/x', TLS_KEY_FILE: '/y' }, /^loader: configuration error: ADMIN_TOKEN: ADMIN_PORT needs ADMIN_TOKEN/],
      [{ ADMIN_TOKEN: 'short' }, /^loader: configuration error: ADMIN_TOKEN: must be at least 32 characters/],
      [{ RELEASE_KEYS: '/nonexistent/keys.pem' }, /^loader: configuration error: RELEASE_KEYS: cannot read/],
    ] as [Record<string, string>, RegExp][]) {
      const r = spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
        env: { PATH: process.env.PATH, ...SALTS, PORT: '0', CACHE_DIR: tmp(), ...vars }, encoding: 'utf8', timeout: 10_000,
      })
      expect(r.status).toBe(78)
      expect(r.stderr.trim()).toMatch(what)
    }
  })
})

describe('the admin socket and the CACHE_DIR are the loader\'s own', () => {
  const run = (vars: Record<string, string>) => spawnSync(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
    env: { PATH: process.env.PATH, ...SALTS, PORT: '0', ...vars }, encoding: 'utf8', timeout: 15_000,
  })

  it('an ADMIN_SOCKET naming a regular file leaves it alone (exit 78); a socket path too long for a unix socket is refused (exit 78)', () => {
    const cache = tmp()
    const precious = join(cache, 'precious.txt')
    writeFileSync(precious, 'data')
    const r = run({ CACHE_DIR: cache, ADMIN_SOCKET: precious })
    expect(r.status, r.stderr).toBe(78)
    expect(r.stderr.trim()).toMatch(/^loader: configuration error: ADMIN_SOCKET: .*precious\.txt exists and is not a socket/)
    expect(readFileSync(precious, 'utf8')).toBe('data')
    const long = join(tmp(), 'c'.repeat(100))
    mkdirSync(long)
    const l = run({ CACHE_DIR: long })
    expect(l.status, l.stderr).toBe(78)
    expect(l.stderr.trim()).toMatch(/^loader: configuration error: ADMIN_SOCKET: the admin socket's path is longer than 107 bytes/)
  })

  it('a second loader on the same CACHE_DIR stops before touching the first one\'s state; after a SIGKILL the lock is taken over', async () => {
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '120' })
    await deployHealth(p, 1, 'one', ['trial'])
    const state = () => readFileSync(join(p.cacheDir, 'functions/state.json'), 'utf8')
    const journalBefore = readFileSync(join(p.cacheDir, 'functions/journal.ndjson'), 'utf8')
    const before = state()
    mkdirSync(join(p.cacheDir, 'tmp/releases/marker-staged'), { recursive: true })
    // The first loader's work in progress: a staged upload, a cache record being written (the
    // start-up clean-up of a second loader must not run before it finds the lock).
    const inProgress = [join(p.cacheDir, 'tmp/staged-1-0123456789ab.tmp'), join(p.cacheDir, 'cache/models/m.bin.json.0123abcd.tmp')]
    mkdirSync(join(p.cacheDir, 'cache/models'), { recursive: true })
    for (const f of inProgress) writeFileSync(f, 'in progress')
    const second = run({ RELEASE_KEYS: key.pubFile, CACHE_DIR: p.cacheDir })
    expect(second.status).toBe(1)
    expect(second.stderr).toMatch(new RegExp(`CACHE_DIR: .* is in use by another loader \\(pid ${p.child.pid}`))
    expect(state()).toBe(before)
    expect(readFileSync(join(p.cacheDir, 'functions/journal.ndjson'), 'utf8')).toBe(journalBefore)
    expect(readdirSync(join(p.cacheDir, 'tmp/releases'))).toEqual(['marker-staged'])
    for (const f of inProgress) expect(readFileSync(f, 'utf8'), f).toBe('in progress')
    expect(await health(p)).toMatchObject({ status: 200, body: { version: 'one' } })
    await p.stop('SIGKILL')
    const q = await start({ RELEASE_KEYS: key.pubFile, CACHE_DIR: p.cacheDir })
    expect(await health(q)).toMatchObject({ status: 200 })
    expect(readFileSync(join(p.cacheDir, 'loader.lock'), 'utf8').split('\n')[0]).toBe(String(q.child.pid))
  })
})

describe('the deploy tool\'s exit codes', () => {
  it('2: a missing --token-file, one line, no stack; 3: no device; 4: no end state within --timeout', async () => {
    const rel = tmp()
    const artifact = healthArtifact('slow', { extra: 'async selfTest() { await new Promise(() => {}) },' })
    const { json, sig } = makeRelease({ name: 'health', artifact, routes: HEALTH_ROUTES, version: 1, key: key.privateKey })
    mkdirSync(join(rel, 'health-1'))
    writeFileSync(join(rel, 'health-1/health.mjs'), artifact)
    writeFileSync(join(rel, 'health-1/release.json'), json)
    writeFileSync(join(rel, 'health-1/release.sig'), sig)
    const deploy = (...args: string[]) => spawnSync(process.execPath, [TSX, join(ROOT, 'scripts/deploy.ts'), 'health', '--releases', rel, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1' })
    const to = `unix://${join(p.cacheDir, 'admin.sock')}`
    const noToken = deploy('--to', to, '--token-file', '/nonexistent/token')
    expect(noToken.status).toBe(2)
    expect(noToken.stderr.trim()).toBe('deploy: --token-file: cannot read /nonexistent/token (ENOENT)')
    const noDevice = deploy('--to', 'unix:///nonexistent/admin.sock')
    expect(noDevice.status).toBe(3)
    expect(noDevice.stderr).toMatch(/^deploy: cannot reach unix:\/\/\/nonexistent\/admin\.sock/)
    const slow = deploy('--to', to, '--timeout', '2')
    expect(slow.status, slow.stderr).toBe(4)
    expect(slow.stderr).toMatch(/no end state within 2 s/)
  })

  it('1 when the device restarts during the trial: it waits for the device and reads the rollback from its journal', async () => {
    const rel = tmp()
    const artifact = healthArtifact('tool')
    const { json, sig } = makeRelease({ name: 'health', artifact, routes: HEALTH_ROUTES, version: 1, key: key.privateKey })
    mkdirSync(join(rel, 'health-1'))
    writeFileSync(join(rel, 'health-1/health.mjs'), artifact)
    writeFileSync(join(rel, 'health-1/release.json'), json)
    writeFileSync(join(rel, 'health-1/release.sig'), sig)
    const p = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '120' })
    const tool = spawn(process.execPath, [TSX, join(ROOT, 'scripts/deploy.ts'), 'health', '--releases', rel, '--to', `unix://${join(p.cacheDir, 'admin.sock')}`, '--timeout', '100'], { cwd: ROOT })
    let out = ''
    tool.stdout.on('data', (d) => { out += d })
    tool.stderr.on('data', (d) => { out += d })
    const exited = new Promise<number | null>((ok) => tool.once('exit', (code) => ok(code)))
    try {
      for (let i = 0; i < 400 && !out.includes(' trial '); i++) await new Promise((r) => setTimeout(r, 50))
      expect(out).toMatch(/ trial {7}swapped in/)
      await p.stop('SIGKILL')
      const q = await start({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '120', CACHE_DIR: p.cacheDir })
      expect(await exited, out).toBe(1)
      expect(out).toMatch(/deploy: rolled_back: the process stopped during the trial\n$/)
      expect(await health(q)).toMatchObject({ status: 200, body: { status: 'healthy' } })
    } finally {
      tool.kill('SIGKILL')
    }
  })
})
