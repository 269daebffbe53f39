// The CACHE_DIR lock: held while its holder's liveness socket answers or its pid runs as the process
// that wrote it; stale after a crash, a reboot, a reused pid or a zombie; never removed by another
// process that happens to have the same pid (every loader is pid 1 in its container).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { Env } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { lockCacheDir, processIdentity } from '../../runtime/deploy/cache-lock'
import { SALTS } from '../helpers/vectors'

const dirs: string[] = []
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'lock-unit-')); dirs.push(d); return d }
const closers: (() => void)[] = []
afterEach(() => { for (const c of closers.splice(0)) c() })
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })
const quiet = { info() {}, warn() {}, error() {}, debug() {}, child() { return quiet } }
const envOf = (cacheDir: string) => ({ config: parseConfig({ ...SALTS, CACHE_DIR: cacheDir }), log: quiet, warnings: [] as string[] }) as unknown as Env
/** Backdates the lock, so it is not taken for one whose writer is still starting. */
const old = (path: string) => utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
const listen = (path: string) => new Promise<Server>((ok) => { const s = createServer((c) => c.destroy()); s.listen(path, () => ok(s)); closers.push(() => s.close()) })

describe('the CACHE_DIR lock', () => {
  it('a live pid that is not the process that wrote the lock (another boot, a reused pid) does not hold it', async () => {
    const cache = tmp()
    const lock = join(cache, 'loader.lock')
    const parent = processIdentity(process.ppid)!
    expect(parent).toMatch(/^[0-9a-f-]{36} \d+$/)
    // Written by the loader of before a power cut, whose pid now belongs to another process.
    writeFileSync(lock, `${process.ppid}\n00000000-0000-0000-0000-000000000000 ${parent.split(' ')[1]}\n`)
    old(lock)
    ;(await lockCacheDir(envOf(cache)))!.release()
    // This boot, the pid given to another process after a crash.
    writeFileSync(lock, `${process.ppid}\n${parent.split(' ')[0]} 1\n`)
    old(lock)
    const taken = (await lockCacheDir(envOf(cache)))!
    expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid}\n${processIdentity(process.pid)}\n[0-9a-f]{16}\n$`))
    taken.release()
    expect(existsSync(lock)).toBe(false)
    // The process that wrote it, alive: it holds it.
    writeFileSync(lock, `${process.ppid}\n${parent}\n`)
    await expect(lockCacheDir(envOf(cache))).rejects.toThrow(`is in use by another loader (pid ${process.ppid}`)
  })

  it('a live pid holds it; an empty or dead one is stale and taken over', async () => {
    const cache = tmp()
    const lock = join(cache, 'loader.lock')
    writeFileSync(lock, `${process.ppid}\n`)
    await expect(lockCacheDir(envOf(cache))).rejects.toThrow(`is in use by another loader (pid ${process.ppid}`)
    expect(readFileSync(lock, 'utf8')).toBe(`${process.ppid}\n`)
    writeFileSync(lock, '')
    old(lock)
    const taken = (await lockCacheDir(envOf(cache)))!
    closers.push(() => taken.release())
    expect(readFileSync(lock, 'utf8').split('\n')[0]).toBe(`${process.pid}`)
    expect(existsSync(`${lock}.sock`)).toBe(true)
  })

  it('a holder in another pid namespace (its pid is ours, as pid 1 in two containers) holds it while its socket answers', async () => {
    const cache = tmp()
    const lock = join(cache, 'loader.lock')
    writeFileSync(lock, `${process.pid}\n`)
    old(lock)
    const holder = await listen(`${lock}.sock`)
    await expect(lockCacheDir(envOf(cache))).rejects.toThrow(`is in use by another loader (pid ${process.pid}`)
    expect(readFileSync(lock, 'utf8')).toBe(`${process.pid}\n`)
    // It died (its socket file stays behind, nobody listens): stale.
    await new Promise((r) => holder.close(r))
    writeFileSync(`${lock}.sock`, '')
    const taken = (await lockCacheDir(envOf(cache)))!
    closers.push(() => taken.release())
    expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid}\n${processIdentity(process.pid)}\n[0-9a-f]{16}\n$`))
  })

  it('release() leaves a lock another holder rewrote (same pid, another container) in place', async () => {
    const cache = tmp()
    const lock = join(cache, 'loader.lock')
    const taken = (await lockCacheDir(envOf(cache)))!
    writeFileSync(lock, `${process.pid}\n`)
    taken.release()
    expect(readFileSync(lock, 'utf8')).toBe(`${process.pid}\n`)
  })

  it('a lock written a moment ago whose writer does not answer yet is waited for, then held once it answers', async () => {
    const cache = tmp()
    const lock = join(cache, 'loader.lock')
    writeFileSync(lock, `${process.pid}\n`)
    setTimeout(() => { void listen(`${lock}.sock`) }, 300)
    await expect(lockCacheDir(envOf(cache))).rejects.toThrow('is in use by another loader')
  })

  it('a holder killed but not yet reaped (a zombie) holds nothing', async () => {
    // sh starts a background sleep, prints its pid and becomes a sleep that never reaps it.
    const sh: ChildProcess = spawn('sh', ['-c', 'sleep 60 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] })
    closers.push(() => sh.kill('SIGKILL'))
    const pid = Number(await new Promise<string>((ok) => sh.stdout!.once('data', (d) => ok(String(d).trim()))))
    const identity = processIdentity(pid)!
    process.kill(pid, 'SIGKILL')
    for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); i++) await new Promise((r) => setTimeout(r, 10))
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toContain(') Z ')
    const cache = tmp()
    const lock = join(cache, 'loader.lock')
    writeFileSync(lock, `${pid}\n${identity}\n`)
    old(lock)
    const taken = (await lockCacheDir(envOf(cache)))!
    closers.push(() => taken.release())
    expect(readFileSync(lock, 'utf8').split('\n')[0]).toBe(String(process.pid))
  })
})
