// A small tmpfs standing for a full disk, mounted in a fresh work folder (mounting needs root or
// CAP_SYS_ADMIN: where it is refused, `mounted` is false and a warning says which tests skip and why).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A work folder `work` (prefix `prefix`) with a tmpfs of `size` (e.g. `8m`) at `dir`; `remove()` unmounts and deletes both. */
export function workWithTmpfs(prefix: string, size: string, skipped: string): { work: string; dir: string; mounted: boolean; remove(): void } {
  const work = mkdtempSync(join(tmpdir(), prefix))
  const dir = join(work, 'tmpfs')
  mkdirSync(dir)
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' })
  const mounted = r.status === 0
  if (!mounted) console.warn(`${skipped} skipped: cannot mount a tmpfs (${(r.stderr || r.error?.message || '').trim()}); it needs root or CAP_SYS_ADMIN`)
  return {
    work, dir, mounted,
    remove() {
      if (mounted) spawnSync('umount', ['-l', dir])
      rmSync(work, { recursive: true, force: true })
    },
  }
}
