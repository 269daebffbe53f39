// Starts the built runtime (dist/runtime.mjs) as a real process on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { FINGERPRINT, SALTS } from './vectors'
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

/** A running loader process, with everything it printed. */
export interface LoaderProcess {
  url: string
  port: number
  cacheDir: string
  child: ChildProcess
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Spawns `node dist/runtime.mjs` as `npm start` does (allocator settings), with test salts and a fresh CACHE_DIR (unless given). */
export async function startLoader(vars: Record<string, string> = {}, nodeArgs: string[] = [], script = join(ROOT, 'dist/runtime.mjs')): Promise<LoaderProcess> {
  const port = vars.PORT ? Number(vars.PORT) : await freePort()
  const cacheDir = vars.CACHE_DIR ?? mkdtempSync(join(tmpdir(), 'loader-e2e-'))
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, GLIBC_TUNABLES: MALLOC_TUNABLES, ...SALTS, HARDWARE_FINGERPRINT: FINGERPRINT, LOG_LEVEL: 'debug', HOST: '127.0.0.1',
      ...vars, PORT: String(port), CACHE_DIR: cacheDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)))
  const url = `http://127.0.0.1:${port}`
  const headers = vars.LOADER_API_TOKEN ? { authorization: `Bearer ${vars.LOADER_API_TOKEN}` } : undefined
  try {
    await Promise.race([waitFor(`${url}/health`, 15_000, { headers }), exited.then((c) => { throw new Error(`loader exited ${c}: ${out}`) })])
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
