// One loader per CACHE_DIR: CACHE_DIR/loader.lock, made with O_EXCL and holding the pid (and, on
// Linux, the boot id and the process's start time on a second line), is taken
// before anything under CACHE_DIR is cleaned, read or written (main.ts takes it before the bindings'
// start-up clean-up), and removed at exit. A lock whose pid is no longer alive (a SIGKILL, a crash),
// or alive but another process than the one that wrote it (a reboot, a reused pid), is stale and taken over.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
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

const alive = (pid: number) => {
  if (pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes CACHE_DIR/loader.lock or throws CacheDirInUse naming the pid holding it. A lock that cannot
 * be written at all (a full or read-only volume) is a warning: the start goes on without it.
 */
export function lockCacheDir(env: Pick<Env, 'config' | 'log' | 'warnings'>): void {
  const path = join(resolve(env.config.CACHE_DIR), 'loader.lock')
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
        return
      }
      const [first = '', recorded = ''] = readFileSync(path, 'utf8').split('\n')
      const pid = Number(first.trim() || 0)
      // A live pid that is not the process that wrote the lock (another boot, or the same pid given
      // to another process after a crash) does not hold it: else the device would never start again.
      const now = recorded.trim() && Number.isInteger(pid) && pid > 0 ? processIdentity(pid) : undefined
      const reused = now !== undefined && now !== recorded.trim()
      if (Number.isInteger(pid) && pid > 0 && alive(pid) && !reused) {
        throw new CacheDirInUse(`CACHE_DIR: ${resolve(env.config.CACHE_DIR)} is in use by another loader (pid ${pid}, ${path}); if no loader runs there, remove that file`)
      }
      rmSync(path, { force: true })
      continue
    }
    try {
      const me = processIdentity(process.pid)
      writeSync(fd, `${process.pid}\n${me ? `${me}\n` : ''}`)
    } catch (e) {
      // A full volume: an empty lock would read as stale to the next loader anyway.
      closeSync(fd)
      rmSync(path, { force: true })
      const warning = `cannot write ${path} (${(e as Error).message}): a second loader on this CACHE_DIR would not be noticed`
      env.log.warn(warning)
      env.warnings.push(warning)
      return
    }
    closeSync(fd)
    process.once('exit', () => {
      try {
        if (readFileSync(path, 'utf8').split('\n')[0].trim() === String(process.pid)) rmSync(path, { force: true })
      } catch {
        // gone already
      }
    })
    return
  }
  throw new CacheDirInUse(`CACHE_DIR: cannot take ${path}: another loader keeps taking it`)
}
