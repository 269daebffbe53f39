// Entry of dist/runtime.mjs: parse config, build env, serve the built functions, handle signals.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { type Config } from '../shared/contract/config'
import { ConfigError, parseConfig, parseKeyValueLines } from './config'
import { createLogger } from './bindings/logger'
import { createEnv } from './env'
import type { LoadedFunction } from './registry'
import { startRuntime } from './server'
import { createTlsListener, type TlsListener } from './tls'
import { recoverInterrupted } from './recover'
import { applyV8Flags, mallocWarning } from './memory-settings'
import { createDevice } from './deploy/device'
import { lockCacheDir } from './deploy/cache-lock'

applyV8Flags()

declare const __LOADER_BAKED_SALTS__: Record<string, string> | undefined

function configOrExit(): Config {
  try {
    const file = process.env.SALTS_FILE ? parseKeyValueLines(readFileSync(process.env.SALTS_FILE, 'utf8')) : {}
    const baked = typeof __LOADER_BAKED_SALTS__ === 'object' ? __LOADER_BAKED_SALTS__ : {}
    return parseConfig(process.env, file, baked)
  } catch (e) {
    const line = e instanceof ConfigError ? e.message
      : `SALTS_FILE: cannot read ${process.env.SALTS_FILE} (${(e as NodeJS.ErrnoException).code ?? 'error'})`
    process.stderr.write(`loader: configuration error: ${line}\n`)
    process.exit(78)
  }
}

const config = configOrExit()
const log = createLogger(config.LOG_LEVEL)
const holder: { current: LoadedFunction[] } = { current: [] }
const dir = resolve(config.FUNCTIONS_DIR)

/** A file named by a variable that cannot be used stops the start like a malformed value. */
function exitOnConfigError(e: unknown): void {
  if (!(e instanceof ConfigError)) return
  process.stderr.write(`loader: configuration error: ${e.message}\n`)
  process.exit(78)
}

// Signals that arrive while the loader starts (it may already answer /health before the admin
// socket is up) are kept and handled once it has started; the default action would kill it.
const early: string[] = []
const keep = (signal: string) => () => { if (signal !== 'SIGHUP') early.push(signal) }
const earlyHandlers = { SIGTERM: keep('SIGTERM'), SIGINT: keep('SIGINT'), SIGHUP: keep('SIGHUP') }
for (const [signal, handler] of Object.entries(earlyHandlers)) process.on(signal, handler)

try {
  let tls: TlsListener | undefined
  if (config.TLS_CERT_FILE && config.TLS_KEY_FILE) {
    tls = createTlsListener({ cert: config.TLS_CERT_FILE, key: config.TLS_KEY_FILE, clientCa: config.TLS_CLIENT_CA_FILE }, log)
  }
  // One loader per CACHE_DIR, taken before anything there is cleaned, read or written: a second
  // loader stops here, before the start-up clean-up could remove the first one's files in progress.
  const lockWarnings: string[] = []
  await lockCacheDir({ config, log, warnings: lockWarnings })
  const env = await createEnv(config, log, () => holder.current.map((f) => f.info))
  env.warnings.push(...lockWarnings)
  // The factory set (dir) and the release store; start-up never fails because of a function.
  const device = await createDevice(env, dir)
  const runtime = await startRuntime({
    env,
    load: device.load,
    watchDir: dir,
    onReady: recoverInterrupted,
    tls,
    observe: device.observe,
  }, holder)
  tls?.watch()
  const admin = await device.serveAdmin(runtime, tls)
  log.info({ url: runtime.url, functions: holder.current.map((f) => f.info.name), version: env.version }, 'loader listening')
  setImmediate(() => {
    // A process report takes milliseconds: it is made only when the settings are missing.
    const warning = mallocWarning(process.env.GLIBC_TUNABLES, () => process.platform === 'linux'
      && Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } })?.header?.glibcVersionRuntime))
    if (warning) {
      log.warn(warning)
      env.warnings.push(warning)
    }
  })

  // SIGHUP: reload changed functions and re-read the certificates.
  process.on('SIGHUP', () => {
    void runtime.reload()
    tls?.reload()
  })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down: no new connections, letting requests in flight finish')
    tls?.close()
    Promise.all([admin.close(), runtime.close()]).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  for (const [signal, handler] of Object.entries(earlyHandlers)) process.off(signal, handler)
  if (early.length) stop(early[0])
} catch (e) {
  exitOnConfigError(e)
  process.stderr.write(`loader: cannot start: ${(e as Error).message}\n`)
  process.exit(1)
}
