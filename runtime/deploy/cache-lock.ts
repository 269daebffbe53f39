// One loader per CACHE_DIR: CACHE_DIR/loader.lock, made with O_EXCL and holding the pid (and, on
// Linux, the boot id and the process's start time on a second line), is taken
// before anything under CACHE_DIR is cleaned, read or written (main.ts takes it before the bindings'
// start-up clean-up), and removed at exit. Its holder also listens on CACHE_DIR/loader.lock.sock, a
// liveness the kernel keeps across pid namespaces: a loader in another container on the same volume
// (where both are pid 1) answers there. A lock is held while that socket answers or its pid is alive
// as the process that wrote it; else (a SIGKILL, a crash, a reboot, a reused pid) it is stale and taken over.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { join, resolve } from 'node:path'
import type { Env } from '../../shared/contract/function'

/** Another loader holds the CACHE_DIR. */
export class CacheDirInUse extends Error {}

/**
 * Who process `pid` is across reboots and pid reuse: the boot id and its start time in clock ticks
 * since boot (/proc/<pid>/stat field 22; no wall clock, so a clock set at boot changes nothing);
 * undefined where /proc cannot tell.
 */
export function processIdentity(pid: number): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
    return boot && /^\d+$/.test(start) ? `${boot} ${start}` : undefined
  } catch {
    return undefined
  }
}

/** True when `pid` runs (a zombie, killed but not yet reaped, does not). */
const alive = (pid: number) => {
  if (pid === process.pid) return false
  try {
    process.kill(pid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true
  }
}

/** True when a process listens on the unix socket `path` (the lock holder's liveness). */
const answers = (path: string) => new Promise<boolean>((ok) => {
  const s = connect(path)
  s.once('connect', () => { s.destroy(); ok(true) })
  s.once('error', () => ok(false))
})

/** Listens on `path` for as long as the process lives (connections are closed at once); undefined when it cannot. */
const listenLiveness = (path: string) => new Promise<Server | undefined>((ok) => {
  rmSync(path, { force: true })
  const server = createServer((c) => c.destroy())
  server.once('error', () => ok(undefined))
  server.listen(path, () => { server.unref(); ok(server) })
})

/** A taken lock: `release()` gives it up (also done at exit). */
export interface CacheDirLock { release(): void }

/** A lock younger than this whose socket does not answer yet may be a loader between its two steps. */
const STARTING_MS = 2000

/**
 * Takes CACHE_DIR/loader.lock or throws CacheDirInUse naming the pid holding it. A lock that cannot
 * be written at all (a full or read-only volume) is a warning: the start goes on without it.
 */
export async function lockCacheDir(env: Pick<Env, 'config' | 'log' | 'warnings'>): Promise<CacheDirLock | undefined> {
  const path = join(resolve(env.config.CACHE_DIR), 'loader.lock')
  const sock = `${path}.sock`
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number
    try {
      mkdirSync(resolve(env.config.CACHE_DIR), { recursive: true, mode: 0o700 })
      fd = openSync(path, 'wx', 0o600)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        const warning = `cannot take ${path} (${(e as Error).message}): a second loader on this CACHE_DIR would not be noticed`
        env.log.warn(warning)
        env.warnings.push(warning)
        return undefined
      }
      const [first = '', recorded = ''] = readFileSync(path, 'utf8').split('\n')
      const pid = Number(first.trim() || 0)
      // A live pid that is not the process that wrote the lock (another boot, or the same pid given
      // to another process after a crash) does not hold it: else the device would never start again.
      const now = recorded.trim() && Number.isInteger(pid) && pid > 0 ? processIdentity(pid) : undefined
      const reused = now !== undefined && now !== recorded.trim()
      const inUse = () => new CacheDirInUse(`CACHE_DIR: ${resolve(env.config.CACHE_DIR)} is in use by another loader (pid ${pid}, ${path}); if no loader runs there, remove that file`)
      if (await answers(sock) || (Number.isInteger(pid) && pid > 0 && alive(pid) && !reused)) throw inUse()
      // Written a moment ago and no answer yet: its writer may be about to listen (in another pid namespace).
      const age = Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0)
      if (age < STARTING_MS) {
        await new Promise((r) => setTimeout(r, STARTING_MS - age))
        if (await answers(sock)) throw inUse()
      }
      rmSync(path, { force: true })
      continue
    }
    const me = processIdentity(process.pid)
    const mine = `${process.pid}\n${me ? `${me}\n` : ''}`
    try {
      writeSync(fd, mine)
    } catch (e) {
      // A full volume: an empty lock would read as stale to the next loader anyway.
      closeSync(fd)
      rmSync(path, { force: true })
      const warning = `cannot write ${path} (${(e as Error).message}): a second loader on this CACHE_DIR would not be noticed`
      env.log.warn(warning)
      env.warnings.push(warning)
      return undefined
    }
    closeSync(fd)
    // The lock is ours from here: a stale socket file of its last holder is replaced.
    const server = await listenLiveness(sock)
    if (!server) env.log.warn({ path: sock }, 'cannot listen on the lock\'s liveness socket: a loader in another pid namespace would be judged by its pid alone')
    const release = () => {
      process.off('exit', release)
      server?.close()
      try {
        // The whole content: in containers every loader may be pid 1.
        if (readFileSync(path, 'utf8') === mine) {
          rmSync(path, { force: true })
          if (server) rmSync(sock, { force: true })
        }
      } catch {
        // gone already
      }
    }
    process.once('exit', release)
    return { release }
  }
  throw new CacheDirInUse(`CACHE_DIR: cannot take ${path}: another loader keeps taking it`)
}
