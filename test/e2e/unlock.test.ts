// F4–F5 end to end: the built runtime unlocks a real docker-archive into a real engine (podman's API service).
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp'
import { aesKey, encryptBuffer } from '../../shared/crypto/blob'
import { startFakeEngine } from '../helpers/fake-engine'
import { opensslEncrypt } from '../helpers/openssl'
import { startPodman, type Podman } from '../helpers/podman'
import { post, startStack, type Stack } from '../helpers/stack'
import { makeCa, startTlsSocketProxy } from '../helpers/tls'
import { copyFileSync } from 'node:fs'

const USER = ['unlock@example.com', 'unlock-pass-1']
const FRAGMENT = `fragment-${randomBytes(8).toString('hex')}`
const IMAGE = 'localhost/loader-e2e:1'

let podman: Podman
let s: Stack
let good: string
let corrupt: string

beforeAll(async () => {
  podman = await startPodman()
  const work = tempDir('unlock-e2e-')
  mkdirSync(join(work, 'rootfs'))
  writeFileSync(join(work, 'rootfs/marker.txt'), `made by the loader e2e test ${FRAGMENT}\n`)
  execFileSync('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.'])
  podman.cli(['import', join(work, 'rootfs.tar'), IMAGE])
  podman.cli(['save', '-o', join(work, 'image.tar'), IMAGE])
  podman.cli(['rmi', IMAGE])
  expect(podman.cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).not.toContain(IMAGE)
  const keyHex = aesKey(FRAGMENT).toString('hex')
  good = join(work, 'good')
  corrupt = join(work, 'corrupt')
  mkdirSync(good)
  mkdirSync(corrupt)
  writeFileSync(join(good, 'image.enc'), opensslEncrypt(keyHex, randomBytes(16).toString('hex'), readFileSync(join(work, 'image.tar'))))
  writeFileSync(join(corrupt, 'image.enc'), opensslEncrypt(keyHex, randomBytes(16).toString('hex'), randomBytes(20_000)))
  s = await startStack({ [USER[0]]: [USER[1], 'Operator'] }, { UNLOCK_ARCHIVE: good, DOCKER_HOST: `unix://${podman.socket}` })
  s.origin.keyFragment = FRAGMENT
})
afterAll(async () => {
  await s?.stop()
  await podman?.stop()
})

async function settle(base: string) {
  for (let i = 0; i < 600; i++) {
    const st = await (await fetch(`${base}/unlock/status`)).json()
    if (st.state === 'ready' || st.state === 'error') return st
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('unlock never settled')
}

describe('unlock into podman', () => {
  it('loads the decrypted archive into the engine: ready, image named, listed by podman', async () => {
    const r = await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })
    expect(r.status).toBe(202)
    const st = await settle(s.loader.url)
    expect(st).toMatchObject({ state: 'ready', error: null })
    expect(st.images).toContain(IMAGE)
    expect(st.progress.bytesDone).toBe(st.progress.bytesTotal)
    expect(podman.cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).toContain(IMAGE)
    expect((await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })).status).toBe(200)
  })

  it('the state survives a restart of the runtime', async () => {
    await s.restartLoader({ UNLOCK_ARCHIVE: good, DOCKER_HOST: `unix://${podman.socket}` })
    const st = await (await fetch(`${s.loader.url}/unlock/status`)).json()
    expect(st).toMatchObject({ state: 'ready', images: expect.arrayContaining([IMAGE]) })
  })

  it('after ready, a plain POST /unlock runs again when the image was removed from the engine', async () => {
    expect((await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })).status).toBe(200)
    podman.cli(['rmi', IMAGE])
    expect(podman.cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).not.toContain(IMAGE)
    const r = await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })
    expect(r.status).toBe(202)
    expect(await settle(s.loader.url)).toMatchObject({ state: 'ready', images: expect.arrayContaining([IMAGE]) })
    expect(podman.cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).toContain(IMAGE)
    expect((await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })).status).toBe(200)
  })

  it('a corrupt archive ends in error with the engine\'s message', async () => {
    await s.restartLoader({ UNLOCK_ARCHIVE: corrupt, DOCKER_HOST: `unix://${podman.socket}` })
    const r = await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1], force: true })
    expect(r.status).toBe(202)
    const st = await settle(s.loader.url)
    expect(st.state).toBe('error')
    expect(st.error).toMatch(/the Docker engine refused image\.enc: .*(payload does not match|invalid tar header)/)
  })

  it('over tcp:// with DOCKER_TLS_VERIFY: the engine behind TLS verified both ways, as the Docker CLI reaches it', async () => {
    const ca = makeCa('Engine CA')
    const other = makeCa('Other CA')
    const front = await startTlsSocketProxy(podman.socket, ca.issue('engine', 'server'), ca.certPem)
    try {
      const certDir = (issuer: typeof ca, name: string) => {
        const d = tempDir('docker-certs-')
        const client = issuer.issue(name, 'client')
        copyFileSync(ca.cert, join(d, 'ca.pem'))
        copyFileSync(client.cert, join(d, 'cert.pem'))
        copyFileSync(client.key, join(d, 'key.pem'))
        return d
      }
      try { podman.cli(['rmi', IMAGE]) } catch { /* not loaded */ }
      const vars = { UNLOCK_ARCHIVE: good, DOCKER_HOST: front.tcp, DOCKER_TLS_VERIFY: '1' }
      // A client certificate the engine's CA did not sign: the handshake fails, nothing is loaded.
      await s.restartLoader({ ...vars, DOCKER_CERT_PATH: certDir(other, 'stranger') })
      await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1], force: true })
      const refused = await settle(s.loader.url)
      expect(refused.state).toBe('error')
      expect(refused.error).toContain(`Docker engine at ${front.tcp}`)
      expect(podman.cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).not.toContain(IMAGE)

      await s.restartLoader({ ...vars, DOCKER_CERT_PATH: certDir(ca, 'loader') })
      await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1], force: true })
      const st = await settle(s.loader.url)
      expect(st).toMatchObject({ state: 'ready', error: null })
      expect(st.images).toContain(IMAGE)
      expect(podman.cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).toContain(IMAGE)
      // After ready, the image check reaches the engine over the same TLS: a plain POST answers 200 and runs nothing.
      expect((await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })).status).toBe(200)
    } finally {
      front.close()
      ca.remove()
      other.remove()
    }
  })

  it('SIGKILL in the middle of an unlock: after a restart on the same CACHE_DIR the state is error: interrupted, nothing half-written is left, and a new unlock runs', async () => {
    // An engine that takes the whole archive and then holds its answer: the job sits in `loading`.
    const engine = await startFakeEngine('podman', ['localhost/killed:1'])
    engine.delayMs = 120_000
    const archive = tempDir('unlock-kill-')
    writeFileSync(join(archive, 'image.enc'), encryptBuffer(aesKey(FRAGMENT), randomBytes(3 << 20)))
    const vars = { UNLOCK_ARCHIVE: archive, DOCKER_HOST: `unix://${engine.socket}` }
    try {
      await s.restartLoader(vars)
      expect((await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1], force: true })).status).toBe(202)
      for (let i = 0; i < 600 && engine.received.length === 0; i++) await new Promise((r) => setTimeout(r, 50))
      expect(engine.received).toHaveLength(1)
      expect((await (await fetch(`${s.loader.url}/unlock/status`)).json()).state).toMatch(/decrypting|loading/)
      await s.loader.stop('SIGKILL')

      await s.restartLoader(vars)
      const st = await (await fetch(`${s.loader.url}/unlock/status`)).json()
      expect(st).toMatchObject({ state: 'error', error: 'interrupted' })
      const stateFiles = readdirSync(join(s.loader.cacheDir, 'state'), { recursive: true }).map(String)
      expect(stateFiles.filter((f) => f.endsWith('.tmp'))).toEqual([])
      engine.delayMs = 0
      expect((await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })).status).toBe(202)
      expect(await settle(s.loader.url)).toMatchObject({ state: 'ready', images: ['localhost/killed:1'] })
      expect(engine.received).toHaveLength(2)
    } finally {
      await engine.close()
    }
  })
})
