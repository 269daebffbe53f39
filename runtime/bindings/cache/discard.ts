// HeldPart.discard: a cached big part that did not decrypt with the small part it was cached for is
// checked against its record and removed when the disk changed it. An intact part points at the
// key (a wrong salt) and stays. Checks run in the background, one hash at a time for the whole
// cache (each reads a whole part), one check per part however many loads fail on it; a part found
// intact is trusted for a while, longer each time it is found intact again.
import { fstatSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { readFile, rm, stat } from 'node:fs/promises'
import type { CacheRecord } from '../../../shared/contract/cache'
import type { Logger } from '../../../shared/contract/logger'
import { hashFile } from '../hash-file'
import type { Eviction } from './eviction'

/** How long an intact verdict holds at first, and at most (doubling each time it is confirmed). */
const FIRST_MS = 60_000
const MOST_MS = 60 * 60_000
/** A hash is given up after 30 s plus 20 MB/s of the part (a disk that hangs): no verdict, the queue moves on. */
const hashDeadline = (bytes: number) => 30_000 + bytes / 20_000
/** Read errors that say the disk cannot deliver the part: it goes, as a changed one does. */
const UNREADABLE = new Set(['EIO', 'EBADMSG', 'EUCLEAN'])
/** Which file a stat is of, and in what state: a file replaced, or rewritten in place, is another. */
const identityOf = (s: { dev: number; ino: number; size: number; mtimeMs: number }) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`

/** The discard of one cache: `discard(path, held, record)` for the hold `held` of the part at `path`. */
export function createDiscard(ev: Eviction, log?: Logger) {
  /** Parts being checked (path and file identity): every failing load of the same file joins its check. */
  const checking = new Map<string, Promise<void>>()
  /** Parts found intact: the file's identity then, until when that holds, and for how long it held last. */
  const intact = new Map<string, { identity: string; until: number; span: number }>()
  /**
   * One hash at a time, whatever the part. A hash given up at its deadline still holds a thread-pool
   * thread until its worker really ends: the next one waits for that, so a disk that hangs costs
   * one thread, not all of them (every file and crypto call of the process needs the pool).
   */
  let hashing: Promise<unknown> = Promise.resolve()
  const hashInTurn = (path: string, bytes: number) => {
    const turn = hashing.then(() => hashFile(path, hashDeadline(bytes)))
    hashing = turn.catch((e: { exited?: Promise<void> }) => e?.exited)
    return turn
  }

  async function check(path: string, bytes: number, identity: string, record: CacheRecord): Promise<void> {
    const known = intact.get(path)
    if (known?.identity === identity && Date.now() < known.until) return
    let changed: boolean
    try {
      changed = await hashInTurn(path, bytes) !== record.sha256
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? ''
      // Another error (the file gone, no descriptor or memory left) says nothing of the bytes: kept, no verdict.
      if (!UNREADABLE.has(code)) {
        log?.warn({ path, code }, 'a cached big part that does not decrypt could not be checked; kept')
        return
      }
      changed = true
    }
    if (!changed) {
      const span = known?.identity === identity ? Math.min(known.span * 2, MOST_MS) : FIRST_MS
      if (intact.size >= 1000) intact.clear()
      intact.set(path, { identity, until: Date.now() + span, span })
      return
    }
    intact.delete(path)
    await ev.serial(async () => {
      // Only the file that failed, under the record it failed with: a commit may have put a good
      // part under the name since (and a file system may give it the old inode number).
      const now = await stat(path).catch(() => null)
      if (!now || identityOf(now) !== identity) return
      const recorded = await readFile(`${path}.json`, 'utf8').then((t) => (JSON.parse(t) as CacheRecord).sha256, () => undefined)
      if (recorded !== record.sha256) return
      await rm(`${path}.json`, { force: true })
      await rm(path, { force: true })
      log?.warn({ path }, 'cached big part removed: its bytes are not the ones recorded, or cannot be read')
    })
  }

  /**
   * Starts (or joins) the check of the part `held` opened. The file's identity is taken at once, so
   * the caller may release its hold when this returns: a check pins no descriptor and no part.
   */
  return (path: string, held: FileHandle, record: CacheRecord): Promise<void> => {
    let mine
    try {
      mine = fstatSync(held.fd)
    } catch (e) {
      return Promise.reject(e)
    }
    const identity = identityOf(mine)
    const key = `${path}\n${identity}`
    const running = checking.get(key)
    if (running) return running
    const job = check(path, mine.size, identity, record).finally(() => checking.delete(key))
    checking.set(key, job)
    return job
  }
}
