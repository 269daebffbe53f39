// The CACHE_DIR lock: the "written a moment ago" wait is STARTING_MS - (Date.now() - mtime). A lock whose
// mtime is AHEAD of the clock (a device without RTC after a power cut: fake-hwclock/timesyncd restore
// the clock to the last save, earlier than the lock written after it; no NTP yet) makes that
// wait as long as the clock is behind — up to 24.8 days (past that setTimeout clamps to 1 ms).
// Here 10 minutes: the start hangs 10 min + 2 s for a lock of a loader long dead.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { Env } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { lockCacheDir } from '../../runtime/deploy/cache-lock'
import { SALTS } from '../helpers/vectors'

const dir = mkdtempSync(join(tmpdir(), 'loader-test-lock-future-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const quiet = { info() {}, warn() {}, error() {}, debug() {}, child() { return quiet } }

it('a stale lock with an mtime ahead of the clock is taken without waiting more than STARTING_MS', async () => {
  const lock = join(dir, 'loader.lock')
  writeFileSync(lock, '999999999\n') // a dead pid: the loader of before the power cut
  const ahead = new Date(Date.now() + 10 * 60_000)
  utimesSync(lock, ahead, ahead)
  const taken = await lockCacheDir({ config: parseConfig({ ...SALTS, CACHE_DIR: dir }), log: quiet, warnings: [] } as unknown as Env)
  taken?.release()
  expect(taken).toBeDefined()
}, 10_000)
