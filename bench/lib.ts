// Bench helpers: random files, encrypted blobs via openssl, child-process timing with peak RSS.
import { MALLOC_TUNABLES } from '../runtime/memory-settings'
import { spawn } from 'node:child_process'
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs'
import { build } from 'esbuild'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { once } from 'node:events'
import { execFileSync } from 'node:child_process'

export const OUT = join(import.meta.dirname, 'out')
export const MiB = 1024 * 1024

/** One measured figure beside its reference. */
export interface Row {
  area: string
  what: string
  bytes: number
  ms: number
  refName?: string
  refMs?: number
  peakRssMiB?: number
  target?: string
}

/** A file of `bytes` random bytes under bench/out, reused between runs. */
export async function randomFile(name: string, bytes: number): Promise<string> {
  mkdirSync(OUT, { recursive: true })
  const path = join(OUT, name)
  if (existsSync(path) && statSync(path).size === bytes) return path
  const out = createWriteStream(path)
  for (let left = bytes; left > 0;) {
    const n = Math.min(left, 4 * MiB)
    if (!out.write(randomBytes(n))) await once(out, 'drain')
    left -= n
  }
  out.end()
  await once(out, 'finish')
  return path
}

/** Encrypts `plainPath` with openssl into a blob file (IV || ciphertext). */
export function opensslEncryptFile(keyHex: string, plainPath: string, blobPath: string): void {
  const iv = randomBytes(16)
  writeFileSync(blobPath, iv)
  execFileSync('bash', ['-c', 'openssl enc -aes-256-cbc -K "$K" -iv "$IV" -in "$IN" >> "$OUT"'], {
    env: { ...process.env, IV: iv.toString('hex'), K: keyHex, IN: plainPath, OUT: blobPath },
  })
}

/** The first 16 bytes of a blob file (its IV), as hex. */
export function ivOf(blobPath: string): string {
  const fd = openSync(blobPath, 'r')
  const iv = Buffer.alloc(16)
  readSync(fd, iv, 0, 16, 0)
  closeSync(fd)
  return iv.toString('hex')
}

/** Runs a command, returns wall-clock ms. */
export async function timeCommand(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now()
  const child = spawn(cmd, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (d) => { stdout += d })
  const [code] = await once(child, 'exit')
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}`)
  return { ms: performance.now() - t0, stdout }
}

/** Bundles a bench worker to plain JS (so its peak RSS is Node's alone, not a TS loader's). */
async function bundled(worker: string): Promise<string> {
  const outfile = join(OUT, 'workers', worker.replace(/\.ts$/, '.mjs'))
  await build({ entryPoints: [join(import.meta.dirname, 'workers', worker)], outfile, bundle: true, platform: 'node', format: 'esm',
    target: 'node20', logLevel: 'warning', banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" } })
  return outfile
}

/** Starts a bench worker as a long-running process; resolves when it prints its first line. */
export async function startWorker(worker: string, args: string[]): Promise<{ stop(): void }> {
  const child = spawn(process.execPath, [await bundled(worker), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  await once(child.stdout, 'data')
  return { stop: () => child.kill() }
}

/** Runs a bench worker that prints one JSON line `{ms, maxRssKiB, ...}`, with the runtime's allocator settings. */
export async function runWorker<T extends { ms: number; maxRssKiB: number }>(worker: string, args: string[]): Promise<T> {
  const { stdout } = await timeCommand(process.execPath, [await bundled(worker), ...args], { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES })
  return JSON.parse(stdout.trim().split('\n').pop()!) as T
}

/** `openssl enc -d` of a blob file into /dev/null, timed. */
export async function opensslDecryptMs(keyHex: string, blobPath: string): Promise<number> {
  const iv = ivOf(blobPath)
  const { ms } = await timeCommand('bash', ['-c', `tail -c +17 "$F" | openssl enc -d -aes-256-cbc -K "$K" -iv "$IV" > /dev/null`],
    { ...process.env, F: blobPath, K: keyHex, IV: iv })
  return ms
}

/** Peak resident set (VmHWM) of a process, MiB. */
export const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

export const mibps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000)
