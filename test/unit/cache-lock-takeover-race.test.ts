// The CACHE_DIR lock: two loaders that find the same STALE lock (a crash, then both restarted at once) can
// both take it. The taker judges the lock stale, then rmSync()s whatever is at the path: if the other
// loader removed the stale lock and wrote its own in between (a few µs between statSync and rmSync
// across two processes on two cores), the taker removes that live lock, writes its own, and also
// rmSync()s the other's liveness socket and binds its own. Both run on one CACHE_DIR. Made
// deterministic here by pausing this process inside that rmSync until a real loader has the lock.
import { spawn, type ChildProcess } from 'node:child_process'
import * as realFs from 'node:fs'
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it, vi } from 'vitest'
import type { Env } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { lockCacheDir } from '../../runtime/deploy/cache-lock'
import { ROOT } from '../helpers/spawn'
import { SALTS } from '../helpers/vectors'

const hook: { onRm?: (path: string) => void } = {}
vi.mock('node:fs', async (orig) => {
  const fs = await orig<typeof import('node:fs')>()
  const rm = (p: realFs.PathLike, o?: realFs.RmOptions) => { hook.onRm?.(String(p)); return fs.rmSync(p, o) }
  return { ...fs, rmSync: rm, default: { ...fs, rmSync: rm } }
})

const dir = mkdtempSync(join(tmpdir(), 'loader-test-lock-race-'))
let child: ChildProcess | undefined
const closers: (() => void)[] = []
afterAll(async () => {
  for (const c of closers) c()
  if (child && child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child!.once('exit', r)) }
  rmSync(dir, { recursive: true, force: true })
})
const quiet = { info() {}, warn() {}, error() {}, debug() {}, child() { return quiet } }
const alive = (pid: number) => { try { return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ') } catch { return false } }
const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

it('of two loaders restarted at once over a stale lock, only one holds it', async () => {
  const lock = join(dir, 'loader.lock')
  writeFileSync(lock, '999999999\n') // the lock of a loader that crashed a minute ago
  utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
  hook.onRm = (path) => {
    if (path !== lock) return
    hook.onRm = undefined
    // We judged the lock stale; before our rmSync runs, the other loader does the same, faster.
    child = spawn(process.execPath, [join(ROOT, 'dist/runtime.mjs')], {
      env: { PATH: process.env.PATH, ...SALTS, CACHE_DIR: dir, PORT: '0', HARDWARE_FINGERPRINT: 'test' }, stdio: 'ignore',
    })
    for (let i = 0; i < 1000 && alive(child.pid!) && !(existsSync(`${lock}.sock`) && readFileSync(lock, 'utf8').startsWith(`${child.pid}\n`)); i++) sleep(20)
  }
  const env = { config: parseConfig({ ...SALTS, CACHE_DIR: dir }), log: quiet, warnings: [] as string[] } as unknown as Env
  const taken = await lockCacheDir(env).then((l) => { closers.push(() => l?.release()); return l }).catch((e) => (e as Error).message)
  // Exactly one of the two may hold it: the other loader (started first) or we.
  for (let i = 0; i < 100 && alive(child!.pid!) && typeof taken !== 'string'; i++) await new Promise((r) => setTimeout(r, 50))
  const both = typeof taken !== 'string' && alive(child!.pid!)
  expect(both ? `both hold it: the lock reads ${JSON.stringify(readFileSync(lock, 'utf8'))}, the other loader (pid ${child!.pid}) still runs` : 'one holds it')
    .toBe('one holds it')
})
