// Builds a real `env` for in-process tests: temp CACHE_DIR, test salts, a log captured in memory.
import { Writable } from 'node:stream'
import { parseConfig } from '../../runtime/config'
import type { Env, LoaderFunction } from '../../shared/contract/function'
import { createLogger } from '../../runtime/bindings/logger'
import { createEnv } from '../../runtime/env'
import { createApp } from '../../runtime/app'
import { createRateLimiter } from '../../runtime/middleware/rate-limit'
import type { LoadedFunction } from '../../runtime/registry'
import { FINGERPRINT, SALTS } from './vectors'
import { tempDir } from './tmp'

/** Every log line written, as text, for secret scans. */
export interface TestEnv { env: Env; logs: string[]; cacheDir: string }

export async function makeEnv(vars: Record<string, string> = {}, fns: () => LoadedFunction[] = () => []): Promise<TestEnv> {
  const cacheDir = tempDir('loader-test-')
  const config = parseConfig({ ...SALTS, HARDWARE_FINGERPRINT: FINGERPRINT, CACHE_DIR: cacheDir, LOG_LEVEL: 'debug', ...vars })
  const logs: string[] = []
  const sink = new Writable({ write(chunk, _e, done) { logs.push(String(chunk)); done() } })
  const env = await createEnv(config, createLogger(config.LOG_LEVEL, sink), () => fns().map((f) => f.info))
  return { env, logs, cacheDir }
}

/** Wraps source modules as loaded functions. */
export function fromSource(mods: LoaderFunction[]): LoadedFunction[] {
  return mods.map((mod) => ({ mod, info: { name: mod.name, sha256: 'source', loadedAt: new Date().toISOString(), routes: mod.routes } }))
}

/** An in-process app over source modules, for `app.request(...)` tests. */
export async function makeApp(mods: LoaderFunction[], vars: Record<string, string> = {}) {
  const fns = fromSource(mods)
  const t = await makeEnv(vars, () => fns)
  const app = createApp(fns, { env: t.env, limiter: createRateLimiter(t.env.config.LOGIN_RATE_PER_MINUTE), transfers: { active: 0 } })
  return { ...t, app }
}
