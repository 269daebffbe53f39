// The CACHE_DIR lock: a holder whose liveness socket's accept queue is full (its process paused — docker
// pause, SIGSTOP, a debugger — while ≥512 connections wait) makes connect() fail with EAGAIN, which
// answers() reads as "nobody listens": a loader in another pid namespace (same pid in the lock)
// then takes a lock whose holder is alive. EAGAIN means a listener exists.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { Env } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { lockCacheDir } from '../../runtime/deploy/cache-lock'
import { SALTS } from '../helpers/vectors'

const dir = mkdtempSync(join(tmpdir(), 'loader-test-lock-busy-'))
let holder: ChildProcess | undefined
const sockets: Socket[] = []
afterAll(async () => {
  for (const s of sockets) s.destroy()
  if (holder && holder.exitCode === null) { holder.kill('SIGKILL'); await new Promise((r) => holder!.once('exit', r)) }
  rmSync(dir, { recursive: true, force: true })
})
const quiet = { info() {}, warn() {}, error() {}, debug() {}, child() { return quiet } }

it('a paused holder with a full accept queue still holds the lock', async () => {
  const lock = join(dir, 'loader.lock')
  const sock = `${lock}.sock`
  // The holder: another container's loader (pid 1 there; here the lock names our own pid, as pid 1 would).
  holder = spawn(process.execPath, ['-e', `require('net').createServer((c) => c.destroy()).listen(${JSON.stringify(sock)})`], { stdio: 'ignore' })
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20))
  writeFileSync(lock, `${process.pid}\n`)
  utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
  holder.kill('SIGSTOP')
  // Whoever: probes of crash-looping containers, anything that connects while it is paused.
  await Promise.all(Array.from({ length: 600 }, () => new Promise<void>((ok) => {
    const s = connect(sock)
    sockets.push(s)
    s.once('connect', () => ok())
    s.once('error', () => ok())
  })))
  const outcome = await lockCacheDir({ config: parseConfig({ ...SALTS, CACHE_DIR: dir }), log: quiet, warnings: [] } as unknown as Env)
    .then((l) => { l?.release(); return 'taken' }, (e) => (e as Error).message)
  holder.kill('SIGCONT')
  expect(outcome).toMatch(/in use by another loader/)
})
