// `npm run dev`: the development stack on loopback — origin, moto (SigV4 + IAM on), the built runtime — seeded and explained.
import { serve } from '@hono/node-server'
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { AwsClient } from 'aws4fetch'
import { aesKey, encryptBuffer } from '../../shared/crypto/blob'
import { resourceKey } from '../../shared/crypto/keys'
import { smallSizeOf } from '../../functions/upload/split'
import { startMoto } from '../helpers/moto'
import { startLoader } from '../helpers/spawn'
import { createOrigin } from './origin'

// Fresh salts and JWT secret for every run: nothing secret is written in the repository.
const salts = { HARDWARE_SALT: randomBytes(12).toString('hex'), API_KEY_SALT: randomBytes(12).toString('hex'), RESOURCE_KEY_SALT: randomBytes(12).toString('hex') }
const jwtSecret = randomBytes(24).toString('hex')
const DEMO = { email: 'demo@example.com', password: 'demo-password', role: 'ApiAdmin' as const }
const OPERATOR = { email: 'operator@example.com', password: 'operator-password', role: 'Operator' as const }

const { app, state } = createOrigin({ jwtSecret, salts })
for (const u of [DEMO, OPERATOR]) state.users.set(u.email, { password: u.password, role: u.role })
state.keyFragment = randomBytes(16).toString('hex')
const origin = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.ORIGIN_PORT ?? 0) }) as Server
await new Promise<void>((r) => (origin.listening ? r() : origin.once('listening', r)))
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`

const moto = await startMoto(['models'])
state.files.set('cdn.yaml', Buffer.from([`host: ${moto.url}`, 'region: us-east-1',
  `downloader_access_key: ${moto.downloader.accessKeyId}`, `downloader_access_secret: ${moto.downloader.secretAccessKey}`,
  `uploader_access_key: ${moto.uploader.accessKeyId}`, `uploader_access_secret: ${moto.uploader.secretAccessKey}`, ''].join('\n')))

// The demo model: encrypted with the resource key and split as crypto.md §4 says.
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

const cacheDir = process.env.CACHE_DIR ?? './data'
mkdirSync(cacheDir, { recursive: true })
const loader = await startLoader({ ...salts, RESOURCE_API_URL: originUrl, JWT_SECRET: jwtSecret, PORT: process.env.PORT ?? '8080',
  CACHE_DIR: cacheDir, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', HARDWARE_FINGERPRINT: '',
  // Unlock needs archives and a Docker engine of your own: pass them through when set.
  ...(process.env.UNLOCK_ARCHIVE ? { UNLOCK_ARCHIVE: process.env.UNLOCK_ARCHIVE } : {}),
  ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}) })
loader.child.stdout!.pipe(process.stdout)

const u = loader.url
console.log(`
loader      ${u}
origin      ${originUrl}   (Resource API: users ${DEMO.email} / ${OPERATOR.email})
S3 (moto)   ${moto.url}   (SigV4 and IAM policies checked)

Try every flow:
  curl -s ${u}/health
  curl -s ${u}/status
  curl -s -X POST ${u}/login -H 'content-type: application/json' -d '{"email":"${DEMO.email}","password":"${DEMO.password}"}'
  curl -s -X POST ${u}/load/demo.bin -o demo.bin && head -c 40 demo.bin; echo
  head -c 100000 /dev/urandom > my.bin && curl -s -X POST '${u}/upload/my.bin?folder=models' -H 'content-type: application/octet-stream' --data-binary @my.bin
  curl -s -X POST ${u}/upload/my2.bin -F data=@my.bin -F folder=models
  curl -s -X POST ${u}/load/my.bin -H 'content-type: application/json' -d '{"folder":"models"}' | cmp - my.bin && echo same
  # unlock: set UNLOCK_ARCHIVE and DOCKER_HOST before npm run dev; without them it ends in an error saying which is missing
  curl -s -X POST ${u}/unlock -H 'content-type: application/json' -d '{"email":"${DEMO.email}","password":"${DEMO.password}"}'
  curl -s ${u}/unlock/status
Ctrl-C stops everything.
`)

const stop = async () => {
  await loader.stop()
  await moto.stop()
  origin.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
