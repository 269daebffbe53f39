// Wires field deployment into the runtime: release keys, the functions chosen at start, the dev
// reload of the factory set, the trial's observer, and the admin surface once the runtime serves.
import { readFileSync } from 'node:fs'
import { ConfigError } from '../config'
import type { Env } from '../../shared/contract/function'
import type { LoadedFunction } from '../registry'
import type { Runtime } from '../server'
import type { TlsListener } from '../tls'
import { createAdminApp, listenAdmin } from './admin'
import { createContext } from './context'
import { createDeployer } from './deployments'
import { loadAtStart, reloadFactory } from './startup'
import { parseReleaseKeys, type ReleaseKey } from './verify'

/** Reads RELEASE_KEYS; a file that is missing or holds no Ed25519 public key is a configuration error. */
export function readReleaseKeys(file: string | undefined): ReleaseKey[] {
  if (!file) return []
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new ConfigError('RELEASE_KEYS', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  try {
    return parseReleaseKeys(text)
  } catch (e) {
    throw new ConfigError('RELEASE_KEYS', (e as Error).message)
  }
}

/** The device side of field deployment for one runtime. */
export async function createDevice(env: Env, factoryDir: string) {
  const keys = readReleaseKeys(env.config.RELEASE_KEYS)
  // The CACHE_DIR lock (one loader per CACHE_DIR) is taken by main.ts before createEnv touches CACHE_DIR.
  const ctx = await createContext(env, keys, factoryDir)
  const deployer = createDeployer(ctx)
  let started = false
  if (!keys.length) {
    // Deployed releases the store still names do not run without the keys: a recreated container
    // that lost RELEASE_KEYS would otherwise revert every field fix with one info line.
    const onDisk = await ctx.pointerFile.read().catch(() => ({}))
    const stored = Object.entries(onDisk).filter(([, p]) => p.active !== 'factory').map(([name, p]) => `${name} ${p.active}`)
    if (stored.length) {
      const warning = `RELEASE_KEYS is not set: the deployed releases ${stored.join(', ')} do not run, the factory set does (set RELEASE_KEYS to run them again)`
      env.log.warn(warning)
      env.warnings.push(warning)
    } else env.log.info('RELEASE_KEYS is not set: deploys are off, the factory set runs')
  }
  return {
    /** The runtime's `load`: the start-up choice the first time, the dev reload after. */
    load(previous: LoadedFunction[]): Promise<LoadedFunction[]> {
      if (started) return reloadFactory(ctx, previous)
      started = true
      return loadAtStart(ctx)
    },
    observe: deployer.observe,
    /** Attaches the running runtime and opens the admin surface; returns its closer. */
    async serveAdmin(runtime: Runtime, tls?: TlsListener) {
      deployer.attach(runtime)
      const app = createAdminApp(ctx, deployer, runtime.functions)
      const tokenApp = env.config.ADMIN_PORT !== undefined ? createAdminApp(ctx, deployer, runtime.functions, env.config.ADMIN_TOKEN) : undefined
      return listenAdmin(ctx, app, tokenApp, tls)
    },
  }
}
