// Makes the release.json and release.sig of an artifact (deploy.md §1); used by `npm run release` and the tests.
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto'
import type { RouteDef } from '../shared/contract/function'
import { CONTRACT_VERSION } from '../shared/contract/function'
import { keyIdOf } from '../runtime/deploy/verify'

/** What a release is made of. */
export interface ReleaseInput {
  name: string
  artifact: Uint8Array
  routes: RouteDef[]
  version: number
  /** PEM of the Ed25519 private key, or the key. */
  key: string | KeyObject
  source?: string | null
  contract?: number
  builtAt?: string
}

/** The exact bytes of release.json and the base64 signature of those bytes. */
export function makeRelease(r: ReleaseInput): { json: Buffer; sig: string } {
  const key = typeof r.key === 'string' ? createPrivateKey(r.key) : r.key
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the release key is ${key.asymmetricKeyType}, not ed25519`)
  const json = Buffer.from(JSON.stringify({
    v: 1, function: r.name, version: r.version,
    sha256: createHash('sha256').update(r.artifact).digest('hex'), bytes: r.artifact.length,
    routes: r.routes, contract: r.contract ?? CONTRACT_VERSION, builtAt: r.builtAt ?? new Date().toISOString(),
    source: r.source ?? null, keyId: keyIdOf(createPublicKey(key)),
  }, null, 2) + '\n')
  return { json, sig: sign(null, json, key).toString('base64') + '\n' }
}
