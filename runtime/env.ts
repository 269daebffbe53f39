// Builds the `env` bindings once at start: storages, cache, logger, clock, hardware.
import { createStorage } from 'unstorage'
import memoryDriver from 'unstorage/drivers/memory'
import { atomicFsDriver } from './bindings/state-driver'
import { join, resolve } from 'node:path'
import { jwtMode, type Config } from '../shared/contract/config'
import type { Env, FunctionInfo } from '../shared/contract/function'
import type { Logger } from '../shared/contract/logger'
import { createCache, prepareCacheDir } from './bindings/cache'
import { createArchives } from './bindings/archives'
import { createClock } from './bindings/clock'
import { createInflight } from './bindings/inflight'
import { createDownloads } from './bindings/downloads'
import { createHardware, isGenericFingerprint } from './bindings/hardware'

declare const __LOADER_VERSION__: string | undefined

/** The loader's version: baked in by build.mjs, `0.0.0-dev` when run from source. */
export const VERSION = typeof __LOADER_VERSION__ === 'string' ? __LOADER_VERSION__ : '0.0.0-dev'

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

/** Start-up checks that refuse to start or warn; returns the warnings. */
export function securityWarnings(config: Config): string[] {
  const warnings: string[] = []
  if (!LOOPBACK.test(config.HOST) && !config.LOADER_API_TOKEN) {
    if (!config.LOADER_INSECURE_OPEN) {
      throw new Error(`HOST: ${config.HOST} is not loopback; set LOADER_API_TOKEN, or LOADER_INSECURE_OPEN=true to serve without a caller token`)
    }
    warnings.push(`serving on ${config.HOST} without a caller token (LOADER_INSECURE_OPEN=true)`)
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
  await prepareCacheDir(cacheDir)
  const warnings = securityWarnings(config)
  for (const w of warnings) log.warn(w)
  const hardware = createHardware(config.HARDWARE_FINGERPRINT)
  // Detect in the background so the first flow does not wait; report a generic fingerprint.
  hardware().then((h) => {
    if (h.source === 'detected' && isGenericFingerprint(h.unknown)) {
      log.warn({ unknown: h.unknown }, 'the hardware fingerprint is generic: mount /sys/class/dmi/id, /dev/disk/by-id and /run/udev read-only so the disk serial can be seen')
    }
  }, (e) => log.error({ err: String(e) }, 'hardware detection failed'))
  return {
    config,
    version: VERSION,
    session: createStorage({ driver: memoryDriver() }),
    state: createStorage({ driver: atomicFsDriver({ base: join(cacheDir, 'state') }) }),
    cache: createCache(cacheDir, config.CACHE_MAX_BYTES, log),
    archives: createArchives(config.UNLOCK_ARCHIVE),
    inflight: createInflight(),
    downloads: createDownloads(),
    clock: createClock(),
    log,
    hardware,
    functions,
    warnings,
  }
}
