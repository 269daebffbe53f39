// Configuration parsing: defaults, one clear line per bad variable, salt precedence.
import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, parseConfig, parseKeyValueLines } from '../../runtime/config'
import { SALTS } from '../helpers/vectors'

describe('config', () => {
  it('applies the documented defaults', () => {
    const c = parseConfig({ ...SALTS })
    expect(c).toMatchObject({ HOST: '127.0.0.1', PORT: 8080, CACHE_DIR: './data', UPLOAD_MAX_BYTES: 4 * 1024 ** 3,
      LOGIN_RATE_PER_MINUTE: 10, FUNCTIONS_DIR: 'dist', DOCKER_HOST: 'unix:///var/run/docker.sock', LOG_LEVEL: 'info' })
    expect(c.RESOURCE_API_URL).toBeUndefined()
  })

  it.each([
    ['PORT', 'abc'], ['PORT', '70000'], ['UPLOAD_MAX_BYTES', String(6 * 1024 ** 3)], ['LOG_LEVEL', 'loud'],
    ['RESOURCE_API_URL', 'ftp://x'], ['DOCKER_HOST', 'http://x'], ['LOADER_INSECURE_OPEN', 'yes'], ['LOADER_API_TOKEN', 'short'],
  ])('names %s when it is %s', (name, value) => {
    expect(() => parseConfig({ ...SALTS, [name]: value })).toThrow(new RegExp(`^${name}: `))
  })

  it('refuses to start without a salt, naming it', () => {
    const { RESOURCE_KEY_SALT: _, ...rest } = SALTS
    expect(() => parseConfig(rest)).toThrow(ConfigError)
    expect(() => parseConfig(rest)).toThrow(/^RESOURCE_KEY_SALT: is required/)
  })

  it('never repeats a secret value in its message', () => {
    try {
      parseConfig({ ...SALTS, LOADER_API_TOKEN: 'tiny-secret' })
      expect.unreachable()
    } catch (e) {
      expect(String(e)).not.toContain('tiny-secret')
    }
  })

  it('takes salts from the environment, then SALTS_FILE, then the baked values', () => {
    const file = parseKeyValueLines('# salts\nHARDWARE_SALT=from-file\nAPI_KEY_SALT="quoted-file"\n')
    const c = parseConfig({ RESOURCE_KEY_SALT: 'from-env', HARDWARE_SALT: '' }, file, { HARDWARE_SALT: 'baked', RESOURCE_KEY_SALT: 'baked' })
    expect([c.HARDWARE_SALT, c.API_KEY_SALT, c.RESOURCE_KEY_SALT]).toEqual(['from-file', 'quoted-file', 'from-env'])
  })

  it('refuses more than one JWT verification setting', () => {
    expect(() => parseConfig({ ...SALTS, JWT_SECRET: 'x', JWKS_URL: 'https://idp/jwks' })).toThrow(/JWT_SECRET: set at most one/)
    // Named after a variable that is set: without JWT_SECRET, the public key's.
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
    expect(() => parseConfig({ ...SALTS, JWT_PUBLIC_KEY: pem, JWKS_URL: 'https://idp.example.com/jwks' })).toThrow(/^JWT_PUBLIC_KEY: set at most one/)
  })
})
