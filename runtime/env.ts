// Builds the `env` bindings once at start: storages, cache, logger, clock, hardware.
import { createStorage } from 'unstorage'
import memoryDriver from 'unstorage/drivers/memory'
import { atomicFsDriver } from './bindings/state-driver'
import { join, resolve } from 'node:path'
import type { Config } from '../shared/contract/config'
import { jwtMode } from '../shared/contract/jwt-mode'
import type { Env, FunctionInfo } from '../shared/contract/function'
import type { Logger } from '../shared/contract/logger'
import { createCache, prepareCacheDir } from './bindings/cache'
import { createArchives } from './bindings/archives'
import { createClock } from './bindings/clock'
import { createInflight } from './bindings/inflight'
import { createTokens } from './bindings/tokens'
import { createDownloads } from './bindings/downloads'
import { createHardware, isGenericFingerprint } from './bindings/hardware'
import { createDockerTls } from './bindings/docker-tls'
import { createMetrics } from './bindings/metrics'
import { ConfigError } from './config'

declare const __LOADER_VERSION__: string | undefined

/** The loader's version: baked in by build.mjs, `0.0.0-dev` when run from source. */
export const VERSION = typeof __LOADER_VERSION__ === 'string' ? __LOADER_VERSION__ : '0.0.0-dev'

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

/** Start-up checks that refuse to start or warn; returns the warnings. */
export function securityWarnings(config: Config): string[] {
  const warnings: string[] = []
  const loopback = LOOPBACK.test(config.HOST)
  // A caller credential is the token or, with mutual TLS, a verified client certificate.
  if (!loopback && !config.LOADER_API_TOKEN && !config.TLS_CLIENT_CA_FILE) {
    if (!config.LOADER_INSECURE_OPEN) {
      throw new ConfigError('HOST', `${config.HOST} is not loopback; set LOADER_API_TOKEN (or TLS_CLIENT_CA_FILE for mutual TLS), or LOADER_INSECURE_OPEN=true to serve without a caller credential`)
    }
    warnings.push(`serving on ${config.HOST} without a caller token (LOADER_INSECURE_OPEN=true)`)
  }
  if (!loopback && !config.TLS_CERT_FILE) {
    warnings.push(`serving on ${config.HOST} over plain HTTP: the caller token and every decrypted model travel in clear; set TLS_CERT_FILE and TLS_KEY_FILE`)
  }
  if (config.DOCKER_TLS_VERIFY && !config.DOCKER_HOST.startsWith('tcp://')) {
    warnings.push('DOCKER_TLS_VERIFY applies to a tcp:// DOCKER_HOST only: ignored for the unix socket')
  }
  // Upstreams in clear: the engine receives decrypted archives, the Resource API passwords and keys.
  const engineHost = /^tcp:\/\/(\[[^\]]+\]|[^:/]+)/.exec(config.DOCKER_HOST)?.[1]?.replace(/^\[|\]$/g, '')
  if (engineHost !== undefined && !LOOPBACK.test(engineHost) && !config.DOCKER_TLS_VERIFY) {
    warnings.push(`DOCKER_HOST ${config.DOCKER_HOST} is not loopback and DOCKER_TLS_VERIFY is not set: decrypted archives go to the engine in clear`)
  }
  if (config.DOCKER_CERT_PATH && !config.DOCKER_TLS_VERIFY) {
    warnings.push('DOCKER_CERT_PATH is set but DOCKER_TLS_VERIFY is not: the engine certificates are not used')
  }
  if (config.RESOURCE_API_URL) {
    const api = new URL(config.RESOURCE_API_URL)
    if (api.protocol !== 'https:' && !LOOPBACK.test(api.hostname.replace(/^\[|\]$/g, ''))) {
      warnings.push(`RESOURCE_API_URL ${api.origin} is not HTTPS and not loopback: passwords, tokens and key material travel in clear`)
    }
  }
  if (jwtMode(config) === 'unverified') {
    warnings.push('JWT signatures are not verified: set JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL')
  }
  if (config.HARDWARE_FINGERPRINT) warnings.push('HARDWARE_FINGERPRINT overrides the detected hardware fingerprint')
  return warnings
}

/** Creates the bindings. `functions` is read on every call, so reloads show at once. */
export async function createEnv(config: Config, log: Logger, functions: () => FunctionInfo[]): Promise<Env> {
  const cacheDir = resolve(config.CACHE_DIR)
  await prepareCacheDir(cacheDir, log)
  const warnings = securityWarnings(config)
  const dockerTls = createDockerTls(config)
  for (const w of warnings) log.warn(w)
  const hardware = createHardware(config.HARDWARE_FINGERPRINT)
  // Detect in the background so the first flow does not wait; report a generic fingerprint.
  hardware().then((h) => {
    if (h.source === 'detected' && isGenericFingerprint(h.unknown)) {
      log.warn({ unknown: h.unknown }, 'the hardware fingerprint is generic: mount /sys/class/dmi/id, /dev/disk/by-id and /run/udev read-only so the disk serial can be seen')
    }
  }, (e) => log.error({ err: String(e) }, 'hardware detection failed'))
  const state = createStorage({ driver: atomicFsDriver({ base: join(cacheDir, 'state') }) })
  // The cache gauges sample what /status reports (partial downloads count against the bound too).
  const metrics = createMetrics({ version: VERSION, cacheUsage: () => cache.usage(), cacheMaxBytes: config.CACHE_MAX_BYTES, state, functions })
  const cache = createCache(cacheDir, config.CACHE_MAX_BYTES, log, metrics)
  return {
    config,
    version: VERSION,
    session: createStorage({ driver: memoryDriver() }),
    state,
    cache,
    archives: createArchives(config.UNLOCK_ARCHIVE),
    inflight: createInflight(),
    downloads: createDownloads(),
    clock: createClock(),
    tokens: createTokens(config),
    log,
    metrics,
    hardware,
    dockerTls,
    functions,
    warnings,
  }
}
