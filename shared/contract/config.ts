// The loader's configuration: one valibot schema over the environment, parsed once at start.
import { createPublicKey } from 'node:crypto'
import * as v from 'valibot'

const GiB = 1024 ** 3

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
    LOG_LEVEL: v.optional(v.picklist(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), 'info'),
    FUNCTIONS_DIR: v.optional(v.pipe(v.string(), v.minLength(1)), 'dist'),
  }),
  v.forward(
    v.check((c) => [c.JWT_SECRET, c.JWT_PUBLIC_KEY, c.JWKS_URL].filter(Boolean).length <= 1,
      'set at most one of JWT_SECRET, JWT_PUBLIC_KEY and JWKS_URL'),
    ['JWT_SECRET'],
  ),
)

export type Config = v.InferOutput<typeof ConfigSchema>

/** How the Resource API's tokens are checked under this configuration. */
export const jwtMode = (c: Config): 'verified' | 'unverified' => (c.JWT_SECRET || c.JWT_PUBLIC_KEY || c.JWKS_URL ? 'verified' : 'unverified')

/** A configuration value that stops the start; its message names the variable. */
export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

/** Parses `KEY=VALUE` lines (comments with `#`, blank lines ignored). */
export function parseKeyValueLines(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim().replace(/^(['"])(.*)\1$/, '$2')
  }
  return out
}

const SALT_KEYS = ['HARDWARE_SALT', 'API_KEY_SALT', 'RESOURCE_KEY_SALT'] as const

/**
 * Parses the configuration. Salts come from the environment first, then `saltsFile`
 * (the parsed SALTS_FILE), then the values baked in at build time. Throws ConfigError
 * naming the first bad variable; the message never repeats a secret value.
 */
export function parseConfig(
  vars: Record<string, string | undefined>,
  saltsFile: Record<string, string> = {},
  baked: Record<string, string> = {},
): Config {
  const input: Record<string, string | undefined> = {}
  for (const key of Object.keys(ConfigSchema.pipe[0].entries)) input[key] = vars[key]
  for (const key of SALT_KEYS) input[key] = vars[key] || saltsFile[key] || baked[key] || undefined
  const result = v.safeParse(ConfigSchema, input)
  if (result.success) return result.output
  const issue = result.issues[0]
  const variable = v.getDotPath(issue) ?? 'configuration'
  const secret = /SALT|SECRET|TOKEN|KEY/.test(variable)
  const got = !secret && typeof issue.input === 'string' ? ` (got ${JSON.stringify(issue.input)})` : ''
  throw new ConfigError(variable, issue.message + got)
}
