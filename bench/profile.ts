// Where the time goes: one run under V8's CPU profiler (node --cpu-prof) in the loader process,
// summarised as the process's CPU time (user/system, all threads) and the main thread's top
// self-time functions during the run. Used by the bench for every row that misses its target.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { Stack } from '../test/helpers/stack'
import { OUT } from './lib'

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

/** utime and stime of a process, ms (from /proc/<pid>/stat, in clock ticks of 10 ms). */
function cpuMs(pid: number): { user: number; sys: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 }
}

/** Builds the loader with identifiers kept into bench/out/dist-readable (once per bench run). */
function readableBuild(): string {
  const out = join(OUT, 'dist-readable')
  if (!existsSync(join(out, 'manifest.json'))) {
    execFileSync(process.execPath, [join(import.meta.dirname, '..', 'build.mjs'), '--readable'], { env: { ...process.env, BUILD_OUT_DIR: out }, stdio: 'ignore' })
  }
  return out
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n)

/**
 * Restarts the loader under the CPU profiler, logs in, runs `warmup` (not profiled: for a steady
 * state) then `run` once, stops the loader and summarises the samples taken during `run`.
 * The loader is started again without profiler.
 */
export async function profileLoader(s: Stack, login: () => Promise<void>, run: () => Promise<unknown>, warmup?: () => Promise<unknown>): Promise<string> {
  const dir = mkdtempSync(join(OUT, 'prof-'))
  try {
    // The same code built with its identifiers kept, so the profile names functions.
    const dist = readableBuild()
    await s.restartLoader({ FUNCTIONS_DIR: dist }, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=500'], script: join(dist, 'runtime.mjs') })
    await login()
    if (warmup) await warmup()
    const pid = s.loader.child.pid!
    const c0 = cpuMs(pid)
    const t0 = nowUs()
    const w0 = performance.now()
    await run()
    const wall = performance.now() - w0
    const t1 = nowUs()
    const c1 = cpuMs(pid)
    await s.restartLoader()
    await login()
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    const cpu = `CPU ${c1.user - c0.user} ms user + ${c1.sys - c0.sys} ms system (all threads) over ${wall.toFixed(0)} ms wall`
    if (!file || !existsSync(join(dir, file))) return `${cpu}; no profile was written`
    return `${cpu}; ${summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, t0, t1)}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Main-thread self time by function within [t0, t1] (µs, monotonic clock), top entries. */
function summarise(p: CpuProfile, t0: number, t1: number): string {
  const frame = new Map(p.nodes.map((n) => [n.id, n.callFrame]))
  const inWindow = new Map<string, number>()
  const all = new Map<string, number>()
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]
    const dt = p.timeDeltas[i + 1] ?? 0
    const f = frame.get(p.samples[i])!
    const key = f.url ? `${f.functionName || '(anonymous)'} (${basename(f.url).replace(/\?.*/, '')}:${f.lineNumber + 1}:${f.columnNumber + 1})` : f.functionName || '(anonymous)'
    all.set(key, (all.get(key) ?? 0) + dt)
    if (t >= t0 && t <= t1) inWindow.set(key, (inWindow.get(key) ?? 0) + dt)
  }
  // The two clocks are both CLOCK_MONOTONIC on Linux; if no sample fell in the window, show the whole process.
  const use = inWindow.size ? inWindow : all
  const total = [...use.values()].reduce((a, b) => a + b, 0)
  const busy = total - (use.get('(idle)') ?? 0)
  const top = [...use.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 8)
  const pct = (x: number) => `${((100 * x) / (total || 1)).toFixed(0)} %`
  return `main thread busy ${pct(busy)} of the ${inWindow.size ? 'run' : 'process life'}; top self time: ` +
    top.map(([k, v]) => `${k} ${pct(v)}`).join(', ')
}
