// `npm run dev`: the development stack on loopback — origin, moto (SigV4 + IAM on), podman's Docker API with a
// demo image archive, the built runtime — seeded and explained. Ctrl-C stops and removes what it started.
import { serve } from '@hono/node-server'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AwsClient } from 'aws4fetch'
import { aesKey, encryptBuffer } from '../../shared/crypto/blob'
import { resourceKey } from '../../shared/crypto/keys'
import { smallSizeOf } from '../../functions/upload/split'
import { startMoto, type Moto } from '../helpers/moto'
import { hasPodman, startPodman, type Podman } from '../helpers/podman'
import { startLoader, type LoaderProcess } from '../helpers/spawn'
import { removeTempDirsSync, tempDir } from '../helpers/tmp'
import { createOrigin } from './origin'

const step = (what: string) => console.log(`dev: ${what}`)
const DEMO_IMAGE = 'localhost/loader-demo:latest'

// Everything started is stopped and removed again, also when the start fails half-way.
let moto: Moto | undefined
let podman: Podman | undefined
let loader: LoaderProcess | undefined
let origin: Server | undefined
let work: string | undefined
let stopping = false
const stop = async (code = 0) => {
  if (stopping) return
  stopping = true
  step(`stopping ${['the loader', 'moto', podman && 'podman (its storage removed)', 'the origin'].filter(Boolean).join(', ')}${work ? ', removing the demo archive' : ''}${process.env.CACHE_DIR ? '' : ' and this run\'s cache'}`)
  await loader?.stop().catch(() => {})
  await moto?.stop().catch(() => {})
  await podman?.stop().catch(() => {})
  origin?.close()
  if (work) rmSync(work, { recursive: true, force: true })
  // Also what a start cut short left (podman's storage while it came up) and the run's own CACHE_DIR.
  try { removeTempDirsSync() } catch (e) { console.error(`dev: could not remove a temporary folder: ${(e as Error).message}`) }
  process.exit(code)
}
process.on('SIGINT', () => void stop())
process.on('SIGTERM', () => void stop())

// Fresh salts and JWT secret for every run: nothing secret is written in the repository.
const salts = { HARDWARE_SALT: randomBytes(12).toString('hex'), API_KEY_SALT: randomBytes(12).toString('hex'), RESOURCE_KEY_SALT: randomBytes(12).toString('hex') }
const jwtSecret = randomBytes(24).toString('hex')
const DEMO = { email: 'demo@example.com', password: 'demo-password', role: 'ApiAdmin' as const }
const OPERATOR = { email: 'operator@example.com', password: 'operator-password', role: 'Operator' as const }

/** Makes a one-file image with podman, saves it as a docker-archive and encrypts it with the key fragment. */
function demoArchive(p: Podman, dir: string, fragment: string): string {
  const rootfs = join(dir, 'rootfs')
  mkdirSync(rootfs)
  writeFileSync(join(rootfs, 'hello.txt'), 'unlocked by the loader\n')
  execFileSync('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.'])
  p.cli(['import', join(dir, 'rootfs.tar'), DEMO_IMAGE])
  p.cli(['save', '--format', 'docker-archive', '-o', join(dir, 'image.tar'), DEMO_IMAGE])
  // Removed again, so the unlock visibly brings it back.
  p.cli(['rmi', DEMO_IMAGE])
  const archives = join(dir, 'archives')
  mkdirSync(archives)
  writeFileSync(join(archives, 'demo-image.enc'), encryptBuffer(aesKey(fragment), readFileSync(join(dir, 'image.tar'))))
  rmSync(join(dir, 'image.tar'))
  return archives
}

try {
  step('starting the development Resource API …')
  const { app, state } = createOrigin({ jwtSecret, salts })
  for (const u of [DEMO, OPERATOR]) state.users.set(u.email, { password: u.password, role: u.role })
  state.keyFragment = randomBytes(16).toString('hex')
  origin = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.ORIGIN_PORT ?? 0) }) as Server
  await new Promise<void>((r) => (origin!.listening ? r() : origin!.once('listening', r)))
  const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`

  step('starting moto (S3 with SigV4 and IAM checks) …')
  moto = await startMoto(['models'])
  state.files.set('cdn.yaml', Buffer.from([`host: ${moto.url}`, 'region: us-east-1',
    `downloader_access_key: ${moto.downloader.accessKeyId}`, `downloader_access_secret: ${moto.downloader.secretAccessKey}`,
    `uploader_access_key: ${moto.uploader.accessKeyId}`, `uploader_access_secret: ${moto.uploader.secretAccessKey}`, ''].join('\n')))

  // The demo model: encrypted with the resource key and split as crypto.md §4 says.
  step('seeding the demo model demo.bin (1 MiB) …')
  const demo = Buffer.concat([Buffer.from('demo model: the loader decrypted this.\n'), randomBytes(1 << 20)])
  const blob = encryptBuffer(aesKey(resourceKey(salts.RESOURCE_KEY_SALT)), demo)
  const n = smallSizeOf(blob.length)
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
  const s3 = new AwsClient({ ...moto.uploader, service: 's3', region: 'us-east-1', retries: 0 })
  const big = blob.subarray(n)
  const put = await s3.fetch(`${moto.url}/models/demo.bin.big`, { method: 'PUT', body: new Uint8Array(big),
    headers: { 'x-amz-content-sha256': sha(big), 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': sha(blob.subarray(0, n)) } })
  if (!put.ok) throw new Error(`seeding the demo model failed: ${put.status}`)
  state.files.set('models/demo.bin.small', Buffer.from(blob.subarray(0, n)))

  // Unlock: your own engine and archives when both are set, else podman with a demo image when installed.
  let unlockVars: Record<string, string> = {}
  let unlockNote: string
  let unlockWorks = true
  if (process.env.UNLOCK_ARCHIVE && process.env.DOCKER_HOST) {
    unlockVars = { UNLOCK_ARCHIVE: process.env.UNLOCK_ARCHIVE, DOCKER_HOST: process.env.DOCKER_HOST }
    unlockNote = `your engine ${process.env.DOCKER_HOST} and archives ${process.env.UNLOCK_ARCHIVE} (encrypted with the key fragment of your origin: this one's is random, so expect an error)`
  } else if (hasPodman()) {
    step('starting podman\'s Docker-compatible API service on a private socket and storage …')
    try {
      podman = await startPodman()
      work = mkdtempSync(join(tmpdir(), 'loader-dev-'))
      step(`making the demo image ${DEMO_IMAGE} and encrypting it with the origin's key fragment …`)
      unlockVars = { UNLOCK_ARCHIVE: demoArchive(podman, work, state.keyFragment), DOCKER_HOST: `unix://${podman.socket}` }
      unlockNote = `podman's API service at unix://${podman.socket} (storage ${podman.dir}), archive ${unlockVars.UNLOCK_ARCHIVE}/demo-image.enc`
    } catch (e) {
      unlockNote = `podman could not be started (${(e as Error).message.split('\n')[0]}): unlock will end in an error`
      unlockWorks = false
    }
  } else {
    unlockWorks = false
    unlockNote = 'unlock needs a Docker-compatible engine and encrypted archives: install podman (apt-get install podman), or set DOCKER_HOST and UNLOCK_ARCHIVE before npm run dev'
    console.log(`dev: ${unlockNote}`)
  }

  step('starting the loader (dist/runtime.mjs) …')
  // A fresh cache per run (removed on exit): a previous run's unlock state and cache were made
  // with other salts. CACHE_DIR set: that folder is used and kept.
  const cacheDir = process.env.CACHE_DIR ?? tempDir('loader-dev-cache-')
  mkdirSync(cacheDir, { recursive: true })
  loader = await startLoader({ ...salts, RESOURCE_API_URL: originUrl, JWT_SECRET: jwtSecret, PORT: process.env.PORT ?? '8080',
    CACHE_DIR: cacheDir, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', HARDWARE_FINGERPRINT: '', ...unlockVars })
  loader.child.stdout!.pipe(process.stdout)
  loader.child.stderr!.pipe(process.stderr)

  const u = loader.url
  const creds = `-H 'content-type: application/json' -d '{"email":"${DEMO.email}","password":"${DEMO.password}"}'`
  console.log(`
loader      ${u}
origin      ${originUrl}   (Resource API: users ${DEMO.email} / ${OPERATOR.email})
S3 (moto)   ${moto.url}   (SigV4 and IAM policies checked)
unlock      ${unlockNote}
cache       ${cacheDir}${process.env.CACHE_DIR ? '' : '   (this run\'s own, removed on exit; set CACHE_DIR to keep one)'}

Try every flow:
  curl -s ${u}/health
  curl -s ${u}/status
  curl -s -X POST ${u}/login ${creds}
  curl -s -X POST ${u}/load/demo.bin -o demo.bin && head -c 40 demo.bin; echo
  head -c 100000 /dev/urandom > my.bin && curl -s -X POST '${u}/upload/my.bin?folder=models' -H 'content-type: application/octet-stream' --data-binary @my.bin
  curl -s -X POST ${u}/upload/my2.bin -F data=@my.bin -F folder=models
  curl -s -X POST ${u}/load/my.bin -H 'content-type: application/json' -d '{"folder":"models"}' | cmp - my.bin && echo same
${unlockWorks ? '' : '  # unlock ends in an error here: it needs podman, or DOCKER_HOST and UNLOCK_ARCHIVE (see "unlock" above)\n'}  curl -s -X POST ${u}/unlock ${creds}
  until curl -s ${u}/unlock/status | grep -Eq '"state":"(ready|error)"'; do sleep 0.5; done; curl -s ${u}/unlock/status
  curl -s ${u}/metrics | grep -E '^loader_(http_requests_total|cache_(hits|misses)_total|cdn_downloads_total|resource_api_requests_total|unlock_state)'
  curl -s ${u}/openapi.json | head -c 200; echo
  curl -s -X POST ${u}/logout
Ctrl-C stops everything.
`)
} catch (e) {
  console.error(`dev: cannot start: ${(e as Error).message}`)
  await stop(1)
}
