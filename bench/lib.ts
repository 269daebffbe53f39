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

/** One measured figure beside its reference: medians, with the best run of each. */
export interface Row {
  area: string
  what: string
  bytes: number
  /** Median wall-clock ms over `runs` runs (the only run when `runs` is 1). */
  ms: number
  /** Fastest run, ms. */
  msMin?: number
  runs?: number
  refName?: string
  refMs?: number
  refMin?: number
  /** Median time to the first byte of the answer, ms (curl's time_starttransfer). */
  ttfbMs?: number
  peakRssMiB?: number
  target?: string
  /** The target as a check: median ratio at least this… */
  minRatio?: number
  /** …and median time to first byte at most this. */
  maxTtfbMs?: number
  /** Where the time goes when a target is missed: a CPU profile of the loader (bench/profile.ts). */
  profile?: string
  /** Where an upload's time goes, phase by phase: medians of the loader's own log lines. */
  phases?: string
}

/** Median and minimum of some timings. */
export function stats(xs: number[]): { median: number; min: number } {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return { median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, min: s[0] }
}

/**
 * Runs `ours` and `ref` `n` times each, alternating (and swapping which goes first every other
 * round), so a drift of the machine hits both alike. Returns the timings of each side.
 */
export async function alternate<T extends { ms: number }>(n: number, ours: () => Promise<T>, ref: () => Promise<{ ms: number }>): Promise<{ ours: T[]; ref: number[] }> {
  const a: T[] = []
  const b: number[] = []
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) { a.push(await ours()); b.push((await ref()).ms) } else { b.push((await ref()).ms); a.push(await ours()) }
  }
  return { ours: a, ref: b }
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

/**
 * Encrypts `plainPath` with openssl: the ciphertext alone into `ctPath` (what `openssl enc -d -in`
 * reads) and, when `blobPath` is given, the blob of crypto.md §1 (IV || ciphertext) the loader reads.
 */
export function opensslEncryptFile(keyHex: string, plainPath: string, ctPath: string, blobPath?: string): { ivHex: string } {
  const iv = randomBytes(16).toString('hex')
  execFileSync('openssl', ['enc', '-aes-256-cbc', '-K', keyHex, '-iv', iv, '-in', plainPath, '-out', ctPath])
  if (blobPath) {
    writeFileSync(blobPath, Buffer.from(iv, 'hex'))
    execFileSync('bash', ['-c', 'cat "$CT" >> "$OUT"'], { env: { ...process.env, CT: ctPath, OUT: blobPath } })
  }
  return { ivHex: iv }
}

/** The first 16 bytes of a blob file (its IV), as hex. */
export function ivOf(blobPath: string): string {
  const fd = openSync(blobPath, 'r')
  const iv = Buffer.alloc(16)
  readSync(fd, iv, 0, 16, 0)
  closeSync(fd)
  return iv.toString('hex')
}

/** Writes the ciphertext of a blob held as `small` (a Buffer, at least 16 bytes) || `bigPath` into `ctPath`; returns the IV. */
export function ciphertextOf(small: Buffer, bigPath: string, ctPath: string): { ivHex: string } {
  writeFileSync(ctPath, small.subarray(16))
  execFileSync('bash', ['-c', 'cat "$B" >> "$OUT"'], { env: { ...process.env, B: bigPath, OUT: ctPath } })
  return { ivHex: small.subarray(0, 16).toString('hex') }
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
export async function bundledWorker(worker: string): Promise<string> {
  const outfile = join(OUT, 'workers', worker.replace(/\.ts$/, '.mjs'))
  await build({ entryPoints: [join(import.meta.dirname, 'workers', worker)], outfile, bundle: true, platform: 'node', format: 'esm',
    target: 'node20', logLevel: 'warning', banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" } })
  return outfile
}

/** Starts a bench worker as a long-running process; resolves when it prints its first line. */
export async function startWorker(worker: string, args: string[]): Promise<{ stop(): void }> {
  const child = spawn(process.execPath, [await bundledWorker(worker), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  await once(child.stdout, 'data')
  return { stop: () => child.kill() }
}

/** Runs a bench worker that prints one JSON line `{ms, maxRssKiB, ...}`, with the runtime's allocator settings. */
export async function runWorker<T extends { ms: number; maxRssKiB: number }>(worker: string, args: string[]): Promise<T> {
  const { stdout } = await timeCommand(process.execPath, [await bundledWorker(worker), ...args], { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES })
  return JSON.parse(stdout.trim().split('\n').pop()!) as T
}

/**
 * `openssl enc -d -in <ciphertext file> -out /dev/null`, timed: the best a user does with the
 * standard tool on the same bytes (no pipe in front of it).
 */
export async function opensslDecrypt(keyHex: string, ivHex: string, ctPath: string): Promise<{ ms: number }> {
  return timeCommand('openssl', ['enc', '-d', '-aes-256-cbc', '-K', keyHex, '-iv', ivHex, '-in', ctPath, '-out', '/dev/null'])
}

/** A curl run: wall-clock ms and curl's own time to the first byte of the answer. */
export async function curlTimed(args: string[]): Promise<{ ms: number; ttfbMs: number }> {
  const { ms, stdout } = await timeCommand('curl', ['-sS', '-f', '-o', '/dev/null', '-w', '%{time_starttransfer}', ...args])
  return { ms, ttfbMs: Number(stdout.trim()) * 1000 }
}

/** curl's SigV4 options for the given keys (S3 on moto, region us-east-1), unsigned payload. */
export const curlSigV4 = (k: { accessKeyId: string; secretAccessKey: string }) =>
  ['-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${k.accessKeyId}:${k.secretAccessKey}`]

/** Peak resident set (VmHWM) of a process, MiB. */
export const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

export const mibps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000)
