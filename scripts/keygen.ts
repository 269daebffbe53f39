// `npm run keygen -- <dir>`: writes an Ed25519 release key pair, release-key.pem (0600) and release-key.pub.pem.
import { generateKeyPairSync } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { keyIdOf } from '../runtime/deploy/verify'

const dir = process.argv[2]
if (!dir) {
  console.error('usage: npm run keygen -- <dir>')
  process.exit(2)
}
const priv = join(resolve(dir), 'release-key.pem')
const pub = join(resolve(dir), 'release-key.pub.pem')
if (existsSync(priv)) {
  console.error(`keygen: ${priv} exists; refusing to overwrite a release key`)
  process.exit(1)
}
mkdirSync(resolve(dir), { recursive: true, mode: 0o700 })
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' })
writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 })
console.log(`private key ${priv} (keep it off the devices)\npublic key  ${pub} (append it to the devices' RELEASE_KEYS)\nkeyId       ${keyIdOf(publicKey)}`)
