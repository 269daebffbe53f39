// No secret reaches a log line, an error body or a file; no plaintext reaches a file.
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp'
import { aesKey, encryptBuffer } from '../../shared/crypto/blob'
import { apiDownloadKey, hardwareHash, resourceKey } from '../../shared/crypto/keys'
import { startFakeEngine, type FakeEngine } from '../helpers/fake-engine'
import { post, startStack, type Stack } from '../helpers/stack'
import { FINGERPRINT } from '../helpers/vectors'

const tag = randomBytes(6).toString('hex')
const SALTS = { HARDWARE_SALT: `HWSALT-${tag}`, API_KEY_SALT: `APISALT-${tag}`, RESOURCE_KEY_SALT: `RESSALT-${tag}` }
const EMAIL = `secret-user-${tag}@example.com`
const PASSWORD = `PASSWORD-${tag}`
const WRONG = `WRONGPASSWORD-${tag}`
const FRAGMENT = `KEYFRAGMENT-${tag}`
const MARKER = Buffer.from(`PLAINTEXT-MARKER-${tag}-`)

let s: Stack
let engine: FakeEngine
const bodies: string[] = []
beforeAll(async () => {
  engine = await startFakeEngine('podman')
  const archives = tempDir('secret-archives-')
  writeFileSync(join(archives, 'image.enc'), encryptBuffer(aesKey(FRAGMENT), Buffer.concat(Array(500).fill(MARKER))))
  s = await startStack({ [EMAIL]: [PASSWORD, 'ApiAdmin'] }, { UNLOCK_ARCHIVE: archives, DOCKER_HOST: `unix://${engine.socket}`, LOG_LEVEL: 'trace' }, SALTS)
  s.origin.keyFragment = FRAGMENT
})
afterAll(async () => { await s?.stop(); await engine?.close() })

const keep = async (r: Response) => { const t = await r.text(); bodies.push(t); return { status: r.status, text: t } }

describe('secrets', () => {
  it('every flow, with distinctive secrets: none in logs or bodies; no plaintext or credential on disk', async () => {
    expect((await keep(await post(s.loader.url, '/login', { email: EMAIL, password: WRONG }))).status).toBe(401)
    expect((await keep(await post(s.loader.url, '/login', { email: EMAIL, password: PASSWORD }))).status).toBe(200)
    const data = Buffer.concat(Array(2000).fill(MARKER))
    expect((await keep(await fetch(`${s.loader.url}/upload/secret.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) }))).status).toBe(201)
    const r = await post(s.loader.url, '/load/secret.bin', {})
    expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true)
    await keep(await post(s.loader.url, '/load/missing.bin', {}))
    await keep(await post(s.loader.url, '/load/..', {}))
    await keep(await fetch(`${s.loader.url}/status`))
    expect((await keep(await post(s.loader.url, '/unlock', { email: EMAIL, password: PASSWORD }))).status).toBe(202)
    for (let i = 0; i < 200; i++) {
      const st = await keep(await fetch(`${s.loader.url}/unlock/status`))
      if (/"state":"(ready|error)"/.test(st.text)) break
      await new Promise((res) => setTimeout(res, 25))
    }
    expect(bodies[bodies.length - 1]).toContain('"state":"ready"')
    await keep(await post(s.loader.url, '/unlock', { email: EMAIL, password: WRONG, force: true }))
    await new Promise((res) => setTimeout(res, 300))
    await keep(await fetch(`${s.loader.url}/unlock/status`))
    // A wrong CDN secret: the error path of the CDN client.
    s.setCdnYaml({ downloader: { accessKeyId: s.moto.downloader.accessKeyId, secretAccessKey: `CDNSECRET-${tag}` } })
    await s.restartLoader({ UNLOCK_ARCHIVE: '/nonexistent', LOG_LEVEL: 'trace' })
    const outputBefore = s.loader.output()
    await keep(await post(s.loader.url, '/login', { email: EMAIL, password: PASSWORD }))
    await keep(await post(s.loader.url, '/load/secret-missing-big.bin', {}))
    s.setCdnYaml()

    const hw = hardwareHash(FINGERPRINT, SALTS.HARDWARE_SALT)
    const apiKey = apiDownloadKey(EMAIL, PASSWORD, hw, SALTS.API_KEY_SALT)
    const secrets = [PASSWORD, WRONG, FRAGMENT, ...Object.values(SALTS), `CDNSECRET-${tag}`, s.moto.downloader.secretAccessKey,
      s.moto.uploader.secretAccessKey, apiKey, resourceKey(SALTS.RESOURCE_KEY_SALT), aesKey(apiKey).toString('hex'), aesKey(FRAGMENT).toString('hex')]
    const logs = outputBefore + s.loader.output()
    expect(logs.length).toBeGreaterThan(1000)
    for (const secret of secrets) {
      expect(logs.includes(secret), `log contains ${secret.slice(0, 12)}…`).toBe(false)
      for (const b of bodies) expect(b.includes(secret), `body contains ${secret.slice(0, 12)}…`).toBe(false)
    }
    expect(logs).not.toMatch(/eyJ[\w-]+\.eyJ/) // no JWT
    for (const b of bodies) expect(b).not.toMatch(/eyJ[\w-]+\.eyJ/)

    const files: string[] = []
    // Regular files only: CACHE_DIR also holds the admin socket.
    const walk = (d: string) => { for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name)); else if (e.isFile()) files.push(join(d, e.name)) }
    walk(s.loader.cacheDir)
    expect(files.length).toBeGreaterThan(2)
    for (const f of files) {
      const bytes = readFileSync(f)
      expect(bytes.includes(MARKER), `${f} holds plaintext`).toBe(false)
      for (const secret of [...secrets, EMAIL]) expect(bytes.includes(Buffer.from(secret)), `${f} holds a secret`).toBe(false)
    }
    expect(createHash('sha256').update(data).digest('hex')).toHaveLength(64)
  })
})
