// Verifies a release (deploy.md §1): Ed25519 signature of release.json's exact bytes against the
// pinned RELEASE_KEYS, then the name, the artifact's sha256 and size, and the contract. node:crypto only.
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto'
import * as v from 'valibot'
import { CONTRACT_VERSION } from '../../shared/contract/function'
import { firstIssue, Damaged, Refused, ReleaseSchema, type Release } from './release'

/** A public key of RELEASE_KEYS with its id. */
export interface ReleaseKey { keyId: string; key: KeyObject }

/** The contract versions this runtime serves. */
export const SERVED_CONTRACTS: readonly number[] = [CONTRACT_VERSION]

/** First 16 hex of SHA-256 of the public key's DER (SPKI). */
export const keyIdOf = (key: KeyObject): string =>
  createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16)

/** Parses a file of one or more PEM Ed25519 public keys; throws when there is none or one is not Ed25519. */
export function parseReleaseKeys(text: string): ReleaseKey[] {
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []
  if (!pems.length) throw new Error('no PEM public key (-----BEGIN PUBLIC KEY-----) in the file')
  return pems.map((pem) => {
    const key = createPublicKey(pem)
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a key is ${key.asymmetricKeyType}, not ed25519`)
    return { keyId: keyIdOf(key), key }
  })
}

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The three files of a release. */
export interface ReleaseFiles { json: Uint8Array; sig: Uint8Array; artifact: Uint8Array }

/**
 * Checks a release against the keys and, when given, the name it arrived under. Throws Refused
 * with the reason; returns the parsed release.json. The signature is checked first: nothing in
 * release.json is believed before it verifies.
 */
export function verifyRelease(files: ReleaseFiles, keys: readonly ReleaseKey[], name?: string): Release {
  const label = name ?? 'release'
  const sig = Buffer.from(Buffer.from(files.sig).toString('utf8').trim(), 'base64')
  if (sig.length !== 64) throw new Refused(`${label}: release.sig is not a base64 Ed25519 signature`)
  const signer = keys.find((k) => verify(null, files.json, k.key, sig))
  if (!signer) throw new Refused(`${label}: the signature does not verify against any key of RELEASE_KEYS`)
  let raw: unknown
  try {
    raw = JSON.parse(Buffer.from(files.json).toString('utf8'))
  } catch {
    throw new Refused(`${label}: release.json is not JSON`)
  }
  const parsed = v.safeParse(ReleaseSchema, raw)
  if (!parsed.success) throw new Refused(`${label}: release.json ${firstIssue(parsed.issues)}`)
  const r = parsed.output
  if (name !== undefined && r.function !== name) throw new Refused(`${name}: release.json names the function ${r.function}`)
  if (r.keyId !== signer.keyId) throw new Refused(`${label}: release.json names key ${r.keyId} but was signed by ${signer.keyId}`)
  const sha = sha256Hex(files.artifact)
  if (sha !== r.sha256) throw new Damaged(`${r.function}: the artifact's sha256 ${sha} is not the signed ${r.sha256}`)
  if (files.artifact.length !== r.bytes) throw new Damaged(`${r.function}: the artifact has ${files.artifact.length} bytes, the release says ${r.bytes}`)
  if (!SERVED_CONTRACTS.includes(r.contract)) {
    throw new Refused(`${r.function}: contract ${r.contract} is not served by this runtime (serves ${SERVED_CONTRACTS.join(', ')})`)
  }
  return r
}
