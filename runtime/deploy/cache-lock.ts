// One loader per CACHE_DIR: CACHE_DIR/loader.lock, made with O_EXCL and holding the pid (and, on
// Linux, the boot id and the process's start time on a second line), is taken
// before anything under CACHE_DIR is cleaned, read or written (main.ts takes it before the bindings'
// start-up clean-up), and removed at exit. Its holder also listens on CACHE_DIR/loader.lock.sock, a
// liveness the kernel keeps across pid namespaces: a loader in another container on the same volume
// (where both are pid 1) answers there. A lock is held while that socket answers or its pid is alive
// as the process that wrote it; else (a SIGKILL, a crash, a reboot, a reused pid) it is stale and taken over.
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
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
  // EAGAIN: a listener whose accept queue is full (its process paused): alive.
  s.once('error', (e: NodeJS.ErrnoException) => ok(e.code === 'EAGAIN'))
})

/** Linux's sun_path holds 107 bytes and libuv truncates longer paths silently: reach a longer one through a descriptor of its folder. */
const UNIX_PATH_MAX = 107
/** listenLiveness binds `<name>.<8 hex>` first. */
const STAGED_SUFFIX = 9
const reachable = (dir: string, name: string, dirFd: () => number) =>
  Buffer.byteLength(join(dir, name)) + STAGED_SUFFIX <= UNIX_PATH_MAX ? join(dir, name) : `/proc/self/fd/${dirFd()}/${name}`

/**
 * Listens on `path` for as long as the process lives (connections are closed at once); undefined when it cannot.
 * Bound under a name of its own, then renamed into place: closing it unlinks only that name, never
 * a socket another loader put at `path`.
 */
const listenLiveness = (path: string) => new Promise<Server | undefined>((ok) => {
  const staged = `${path}.${randomBytes(4).toString('hex')}`
  const server = createServer((c) => c.destroy())
  server.once('error', () => ok(undefined))
  server.listen(staged, () => {
    server.unref()
    try {
      renameSync(staged, path)
      ok(server)
    } catch {
      server.close()
      ok(undefined)
    }
  })
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A guard left by a loader that crashed inside removeStale's few microseconds is removed after this. */
const GUARD_STALE_MS = 10_000

/**
 * Removes the lock at `path` if it is still exactly the one judged stale (`content`), under an
 * O_EXCL guard: of two loaders that judged the same lock stale, only one removes it, and the other
 * then finds the new lock (never removes it). False when another loader is taking over right now.
 */
function removeStale(path: string, content: string): boolean {
  const guard = `${path}.takeover`
  let g: number
  try {
    g = openSync(guard, 'wx', 0o600)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    const age = Date.now() - (statSync(guard, { throwIfNoEntry: false })?.mtimeMs ?? 0)
    if (Math.abs(age) > GUARD_STALE_MS) rmSync(guard, { force: true })
    return false
  }
  try {
    let now: string | undefined
    try { now = readFileSync(path, 'utf8') } catch { now = undefined }
    if (now === content) rmSync(path, { force: true })
  } finally {
    closeSync(g)
    rmSync(guard, { force: true })
  }
  return true
}

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
  let dirFd: number | undefined
  const sock = reachable(resolve(env.config.CACHE_DIR), 'loader.lock.sock', () => dirFd ??= openSync(resolve(env.config.CACHE_DIR), 'r'))
  for (let attempt = 0; attempt < 50; attempt++) {
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
      let content: string
      let mtimeMs: number
      try {
        const rfd = openSync(path, 'r')
        try {
          mtimeMs = fstatSync(rfd).mtimeMs
          content = readFileSync(rfd, 'utf8')
        } finally {
          closeSync(rfd)
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue // taken over meanwhile: look again
        throw e
      }
      const [first = '', recorded = ''] = content.split('\n')
      const pid = Number(first.trim() || 0)
      // A live pid that is not the process that wrote the lock (another boot, or the same pid given
      // to another process after a crash) does not hold it: else the device would never start again.
      const now = recorded.trim() && Number.isInteger(pid) && pid > 0 ? processIdentity(pid) : undefined
      const reused = now !== undefined && now !== recorded.trim()
      const inUse = () => new CacheDirInUse(`CACHE_DIR: ${resolve(env.config.CACHE_DIR)} is in use by another loader (pid ${pid}, ${path}); if no loader runs there, remove that file`)
      if (await answers(sock) || (Number.isInteger(pid) && pid > 0 && alive(pid) && !reused)) throw inUse()
      // Written a moment ago and no answer yet: its writer may be about to listen (in another pid namespace).
      const age = Date.now() - mtimeMs
      if (age < STARTING_MS) {
        // An mtime ahead of the clock (a clock set back at boot) is no reason to wait longer.
        await new Promise((r) => setTimeout(r, Math.min(STARTING_MS, STARTING_MS - age)))
        if (await answers(sock)) throw inUse()
      }
      if (!removeStale(path, content)) await sleep(20)
      continue
    }
    const me = processIdentity(process.pid)
    // A nonce last: two loaders that are pid 1 in containers started in the same clock tick still write different locks.
    const mine = `${process.pid}\n${me ?? ''}\n${randomBytes(8).toString('hex')}\n`
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
      if (dirFd !== undefined) closeSync(dirFd)
      dirFd = undefined
    }
    process.once('exit', release)
    return { release }
  }
  throw new CacheDirInUse(`CACHE_DIR: cannot take ${path}: another loader keeps taking it`)
}
