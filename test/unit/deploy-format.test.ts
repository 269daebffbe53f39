// Field deployment, in process: the deploy variables, release verification and the journal's hash chain.
import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../runtime/config'
import { verifyChain } from '../../runtime/deploy/journal'
import { keyIdOf, parseReleaseKeys, verifyRelease } from '../../runtime/deploy/verify'
import { makeRelease } from '../../scripts/release-files'
import { SALTS } from '../helpers/vectors'

describe('deploy configuration', () => {
  it('has the documented defaults and leaves the admin port off', () => {
    expect(parseConfig({ ...SALTS })).toMatchObject({ ADMIN_BODY_MAX_BYTES: 8 * 1024 * 1024, DEPLOY_TRIAL_S: 60, DEPLOY_TRIAL_MAX_ERRORS: 3, RELEASES_KEPT: 3,
      ADMIN_PORT: undefined, ADMIN_SOCKET: undefined, RELEASE_KEYS: undefined })
  })

  it.each([
    [{ ADMIN_PORT: '8443' }, /^ADMIN_TOKEN: ADMIN_PORT needs ADMIN_TOKEN/],
    [{ ADMIN_PORT: '8443', ADMIN_TOKEN: 'a'.repeat(32) }, /^TLS_CERT_FILE: ADMIN_PORT is served over TLS only/],
    [{ ADMIN_PORT: '70000' }, /^ADMIN_PORT: /],
    [{ ADMIN_TOKEN: 'a'.repeat(31) }, /^ADMIN_TOKEN: must be at least 32 characters$/],
    [{ ADMIN_TOKEN: 'a'.repeat(32), LOADER_API_TOKEN: 'a'.repeat(32) }, /^ADMIN_TOKEN: must differ from LOADER_API_TOKEN$/],
    // Not on the callers' port (deploy.md §3): the same port was a bind failure after the callers' port opened (exit 1).
    [{ PORT: '8443', ADMIN_PORT: '8443', ADMIN_TOKEN: 'a'.repeat(32), TLS_CERT_FILE: '/c.pem', TLS_KEY_FILE: '/k.pem' }, /^ADMIN_PORT: must differ from PORT \(the admin surface is never on the callers' port\)$/],
    [{ DEPLOY_TRIAL_S: '0' }, /^DEPLOY_TRIAL_S: /],
    [{ ADMIN_BODY_MAX_BYTES: 'lots' }, /^ADMIN_BODY_MAX_BYTES: /],
  ])('refuses %o', (vars, message) => {
    expect(() => parseConfig({ ...SALTS, ...vars })).toThrow(message)
  })
})

describe('release verification', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const keys = parseReleaseKeys(publicKey.export({ type: 'spki', format: 'pem' }) as string)
  const artifact = Buffer.from('export default {}')
  const release = makeRelease({ name: 'load', artifact, routes: [], version: 5, key: privateKey })
  const files = { json: release.json, sig: Buffer.from(release.sig), artifact }

  it('accepts the release it signed and names the key', () => {
    expect(verifyRelease(files, keys, 'load')).toMatchObject({ function: 'load', version: 5, keyId: keyIdOf(publicKey), contract: 1 })
    expect(keys[0].keyId).toMatch(/^[0-9a-f]{16}$/)
  })

  it('refuses one byte changed anywhere', () => {
    const json = Buffer.from(release.json)
    json[json.indexOf('5')] = '6'.charCodeAt(0)
    expect(() => verifyRelease({ ...files, json }, keys, 'load')).toThrow(/signature does not verify/)
    expect(() => verifyRelease({ ...files, artifact: Buffer.from('export default {} ') }, keys, 'load')).toThrow(/is not the signed/)
    expect(() => verifyRelease(files, keys, 'unlock')).toThrow(/^unlock: release.json names the function load/)
  })

  it('refuses a key file without an Ed25519 public key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
    expect(() => parseReleaseKeys(rsa)).toThrow(/not ed25519/)
    expect(() => parseReleaseKeys('nothing here')).toThrow(/no PEM public key/)
  })
})

describe('journal chain', () => {
  it('finds the first line whose prev does not match', () => {
    expect(verifyChain('')).toEqual({ intact: true })
    expect(verifyChain('{"prev":"x"}\n')).toEqual({ intact: false, brokenAt: 1 })
    expect(verifyChain('not json\n{"prev":"x"}\n')).toEqual({ intact: false, brokenAt: 2 })
  })
})
