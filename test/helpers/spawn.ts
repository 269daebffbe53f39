// Starts the built runtime (dist/runtime.mjs) as a real process on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { FINGERPRINT, SALTS } from './vectors'
import { tempDir } from './tmp'
import { MALLOC_TUNABLES } from '../../runtime/memory-settings'

export const ROOT = resolve(import.meta.dirname, '../..')

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.once('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => ok(port))
    })
  })
}

/** Polls `url` until it answers 200 or the deadline passes. */
export async function waitFor(url: string, ms = 15_000, init?: RequestInit): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    try {
      const r = await fetch(url, init)
      await r.arrayBuffer()
      if (r.ok) return
    } catch { /* not up yet */ }
    if (Date.now() > end) throw new Error(`${url} did not come up in ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Polls `text()` until it contains `needle`. */
async function waitForLine(text: () => string, needle: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!text().includes(needle)) {
    if (Date.now() > end) throw new Error(`no ${needle} in ${ms} ms: ${text()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A running loader process, with everything it printed. */
export interface LoaderProcess {
  url: string
  port: number
  cacheDir: string
  child: ChildProcess
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** How to start the process: a command `wrap` that ends by exec'ing its arguments (e.g. `unshare … sh -c '…; exec "$@"' sh`, so the pid stays node's), node flags, another script. */
export interface StartOptions { wrap?: string[]; nodeArgs?: string[]; script?: string }

/** Spawns `node dist/runtime.mjs` as `npm start` does (allocator settings), with test salts and a fresh CACHE_DIR (unless given). */
export async function startLoader(vars: Record<string, string> = {}, { wrap = [], nodeArgs = [], script = join(ROOT, 'dist/runtime.mjs') }: StartOptions = {}): Promise<LoaderProcess> {
  const port = vars.PORT ? Number(vars.PORT) : await freePort()
  const cacheDir = vars.CACHE_DIR ?? tempDir('loader-e2e-')
  const command = [...wrap, process.execPath, ...nodeArgs, script]
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    env: { PATH: process.env.PATH, GLIBC_TUNABLES: MALLOC_TUNABLES, ...SALTS, HARDWARE_FINGERPRINT: FINGERPRINT, LOG_LEVEL: 'debug', HOST: '127.0.0.1',
      ...vars, PORT: String(port), CACHE_DIR: cacheDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)))
  const tls = Boolean(vars.TLS_CERT_FILE)
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`
  const headers = vars.LOADER_API_TOKEN ? { authorization: `Bearer ${vars.LOADER_API_TOKEN}` } : undefined
  // The listening line comes once every listener is up, the admin socket included (it opens after
  // /health answers, so a test that waited for /health alone could race it); at a quieter log level
  // than info, /health is all there is to wait for. Over HTTPS the test's fetch does not trust the test CA.
  const quiet = ['warn', 'error', 'fatal', 'silent'].includes(vars.LOG_LEVEL ?? '')
  const up = Promise.all([
    quiet ? undefined : waitForLine(() => out, '"loader listening"'),
    tls ? undefined : waitFor(`${url}/health`, 15_000, { headers }),
  ])
  try {
    await Promise.race([up, exited.then((c) => { throw new Error(`loader exited ${c}: ${out}`) })])
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  return {
    url, port, cacheDir, child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
