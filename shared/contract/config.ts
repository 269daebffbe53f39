// The loader's configuration: one valibot schema over the environment (runtime/config.ts parses it once at start).
import { createPublicKey } from 'node:crypto'
import { join, resolve } from 'node:path'
import * as v from 'valibot'

const GiB = 1024 ** 3

/** The longest path a unix socket can be bound to (sun_path holds 108 bytes with the final NUL). */
export const UNIX_PATH_MAX = 107

/** Where the admin socket is bound: ADMIN_SOCKET, else CACHE_DIR/admin.sock, absolute. */
export const adminSocketPath = (c: { ADMIN_SOCKET?: string; CACHE_DIR: string }) => resolve(c.ADMIN_SOCKET ?? join(c.CACHE_DIR, 'admin.sock'))

const intIn = (min: number, max: number, fallback: number) => v.pipe(
  v.optional(v.string(), String(fallback)),
  v.regex(/^\d+$/, `expected a whole number from ${min} to ${max}`),
  v.transform(Number),
  v.minValue(min, `expected a whole number from ${min} to ${max}`),
  v.maxValue(max, `expected a whole number from ${min} to ${max}`),
)
const bool = v.pipe(v.optional(v.picklist(['true', 'false', '1', '0', '']), 'false'), v.transform((s) => s === 'true' || s === '1'))
const optionalText = v.pipe(v.optional(v.string()), v.transform((s) => (s === '' ? undefined : s)))
const salt = v.pipe(v.string('is required (environment, SALTS_FILE or a baked build)'), v.minLength(1, 'must not be empty'))
const url = v.pipe(v.string(), v.url('expected an http(s) URL'), v.regex(/^https?:\/\//, 'expected an http(s) URL'))

/** Why a PEM cannot verify RS/ES/PS tokens, or undefined when it can. */
function publicKeyProblem(pem: string): string | undefined {
  if (/PRIVATE KEY/.test(pem)) return 'is a private key: give the public key (PEM)'
  try {
    const type = createPublicKey(pem).asymmetricKeyType
    return type === 'rsa' || type === 'rsa-pss' || type === 'ec' ? undefined : `is a ${type} key: expected an RSA or EC public key (PEM)`
  } catch {
    return 'is not a PEM public key that can be read (RSA or EC, "\\n" allowed for line breaks)'
  }
}
const publicKey = v.pipe(
  optionalText,
  // Environment files often carry a PEM on one line with literal "\n".
  v.transform((s) => s?.replace(/\\n/g, '\n')),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed && dataset.value !== undefined ? publicKeyProblem(dataset.value) : undefined
    if (problem) addIssue({ message: problem })
  }),
)
/** The JWKS holds the keys tokens are trusted by: https, or plain http only on loopback. */
const jwksUrl = v.pipe(
  v.optional(v.union([v.literal(''), url])),
  v.transform((s) => s || undefined),
  v.check((s) => s === undefined || s.startsWith('https://') || /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(s),
    'expected an https URL (plain http only on loopback: the JWKS decides which tokens are trusted)'),
)

/** Schema of the environment variables the loader reads. */
export const ConfigSchema = v.pipe(
  v.object({
    HOST: v.optional(v.pipe(v.string(), v.minLength(1)), '127.0.0.1'),
    PORT: intIn(0, 65535, 8080),
    RESOURCE_API_URL: v.pipe(v.optional(v.union([v.literal(''), url])), v.transform((s) => (s ? s.replace(/\/+$/, '') : undefined))),
    CACHE_DIR: v.optional(v.pipe(v.string(), v.minLength(1)), './data'),
    UNLOCK_ARCHIVE: v.optional(v.pipe(v.string(), v.minLength(1)), '/opt/loader/images'),
    DOCKER_HOST: v.optional(v.pipe(v.string(), v.regex(/^(unix:\/\/\/.+|tcp:\/\/[^/]+:\d+\/?)$/, 'expected unix:///path or tcp://host:port')), 'unix:///var/run/docker.sock'),
    HARDWARE_SALT: salt,
    API_KEY_SALT: salt,
    RESOURCE_KEY_SALT: salt,
    HARDWARE_FINGERPRINT: optionalText,
    JWT_SECRET: optionalText,
    JWT_PUBLIC_KEY: publicKey,
    JWKS_URL: jwksUrl,
    JWT_ISSUER: optionalText,
    JWT_AUDIENCE: optionalText,
    LOADER_API_TOKEN: v.pipe(optionalText, v.check((s) => s === undefined || s.length >= 16, 'must be at least 16 characters')),
    LOADER_INSECURE_OPEN: bool,
    UPLOAD_MAX_BYTES: intIn(0, 5 * GiB, 4 * GiB),
    CACHE_MAX_BYTES: intIn(0, Number.MAX_SAFE_INTEGER, 32 * GiB),
    LOGIN_RATE_PER_MINUTE: intIn(1, 100000, 10),
    MAX_CONCURRENT_TRANSFERS: intIn(1, 1024, 16),
    API_TIMEOUT_MS: intIn(100, 600000, 15000),
    API_READ_RETRIES: intIn(0, 10, 2),
    CDN_TIMEOUT_MS: intIn(100, 600000, 30000),
    CDN_READ_RETRIES: intIn(0, 10, 2),
    DOCKER_TIMEOUT_MS: intIn(1000, 3600000, 600000),
    SHUTDOWN_GRACE_MS: intIn(0, 600000, 10000),
    CLIENT_STALL_TIMEOUT_MS: intIn(1000, 3600000, 60000),
    LOG_LEVEL: v.optional(v.picklist(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), 'info'),
    FUNCTIONS_DIR: v.optional(v.pipe(v.string(), v.minLength(1)), 'dist'),
    TLS_CERT_FILE: optionalText,
    TLS_KEY_FILE: optionalText,
    TLS_CLIENT_CA_FILE: optionalText,
    // As the Docker CLI reads it: any non-empty value turns verification on.
    DOCKER_TLS_VERIFY: v.pipe(v.optional(v.string()), v.transform((s) => Boolean(s))),
    DOCKER_CERT_PATH: optionalText,
    // Field deployment (deploy.md): release keys, the admin surface, the trial, the store.
    RELEASE_KEYS: optionalText,
    ADMIN_SOCKET: optionalText,
    ADMIN_PORT: v.pipe(v.optional(v.string(), ''), v.regex(/^(\d{1,5})?$/, 'expected a port from 1 to 65535'),
      v.transform((s) => (s ? Number(s) : undefined)), v.check((n) => n === undefined || (n >= 1 && n <= 65535), 'expected a port from 1 to 65535')),
    ADMIN_TOKEN: v.pipe(optionalText, v.check((s) => s === undefined || s.length >= 32, 'must be at least 32 characters')),
    ADMIN_BODY_MAX_BYTES: intIn(1024, GiB, 8 * 1024 * 1024),
    DEPLOY_TRIAL_S: intIn(1, 86400, 60),
    DEPLOY_TRIAL_MAX_ERRORS: intIn(1, 100000, 3),
    RELEASES_KEPT: intIn(1, 100, 3),
  }),
  v.forward(
    v.check((c) => !c.TLS_CERT_FILE || !!c.TLS_KEY_FILE, 'is required when TLS_CERT_FILE is set'),
    ['TLS_KEY_FILE'],
  ),
  v.forward(
    v.check((c) => !c.TLS_KEY_FILE || !!c.TLS_CERT_FILE, 'is required when TLS_KEY_FILE is set'),
    ['TLS_CERT_FILE'],
  ),
  v.forward(
    v.check((c) => !c.TLS_CLIENT_CA_FILE || !!c.TLS_CERT_FILE, 'is required when TLS_CLIENT_CA_FILE is set (mutual TLS needs HTTPS)'),
    ['TLS_CERT_FILE'],
  ),
  // Named after a variable that is set: JWT_SECRET with either other, else JWT_PUBLIC_KEY with JWKS_URL.
  v.forward(
    v.check((c) => !c.JWT_SECRET || (!c.JWT_PUBLIC_KEY && !c.JWKS_URL), 'set at most one of JWT_SECRET, JWT_PUBLIC_KEY and JWKS_URL'),
    ['JWT_SECRET'],
  ),
  v.forward(
    v.check((c) => !c.JWT_PUBLIC_KEY || !c.JWKS_URL, 'set at most one of JWT_SECRET, JWT_PUBLIC_KEY and JWKS_URL'),
    ['JWT_PUBLIC_KEY'],
  ),
  v.forward(v.check((c) => c.ADMIN_PORT === undefined || !!c.ADMIN_TOKEN, 'ADMIN_PORT needs ADMIN_TOKEN (at least 32 characters)'), ['ADMIN_TOKEN']),
  v.forward(v.check((c) => c.ADMIN_PORT === undefined || (!!c.TLS_CERT_FILE && !!c.TLS_KEY_FILE), 'ADMIN_PORT is served over TLS only: set TLS_CERT_FILE and TLS_KEY_FILE'), ['TLS_CERT_FILE']),
  v.forward(v.check((c) => !c.ADMIN_TOKEN || c.ADMIN_TOKEN !== c.LOADER_API_TOKEN, 'must differ from LOADER_API_TOKEN'), ['ADMIN_TOKEN']),
  v.forward(v.check((c) => c.ADMIN_PORT === undefined || c.ADMIN_PORT !== c.PORT, 'must differ from PORT (the admin surface is never on the callers\' port)'), ['ADMIN_PORT']),
  v.forward(v.check((c) => Buffer.byteLength(adminSocketPath(c)) <= UNIX_PATH_MAX,
    `the admin socket's path is longer than ${UNIX_PATH_MAX} bytes (a unix socket's limit): set ADMIN_SOCKET to a shorter path, or use a shorter CACHE_DIR`), ['ADMIN_SOCKET']),
)

export type Config = v.InferOutput<typeof ConfigSchema>
