// The CACHE_DIR lock: a lock socket path longer than sun_path (107 bytes) is bound silently TRUNCATED by
// Node 20's libuv 1.46 (node 20.20.2 here): the socket lands at another name, is never removed,
// and with an even longer CACHE_DIR a loader on ANOTHER CACHE_DIR sharing the first 107 bytes
// answers for this one (so a restart after a crash is refused: "in use by another loader").
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { Env } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { lockCacheDir } from '../../runtime/deploy/cache-lock'
import { SALTS } from '../helpers/vectors'

const root = mkdtempSync(join(tmpdir(), 'loader-test-lock-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const quiet = { info() {}, warn() {}, error() {}, debug() {}, child() { return quiet } }
const envOf = (cacheDir: string, more: Record<string, string> = {}) => ({ config: parseConfig({ ...SALTS, CACHE_DIR: cacheDir, ...more }), log: quiet, warnings: [] as string[] }) as unknown as Env
const stale = (dir: string) => {
  writeFileSync(join(dir, 'loader.lock'), '999999999\n') // a crashed loader's lock: a dead pid
  utimesSync(join(dir, 'loader.lock'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
}

it('a CACHE_DIR of 91..96 bytes (accepted with the default ADMIN_SOCKET): nothing is left behind after release', async () => {
  const dir = join(root, 'a'.repeat(94 - root.length - 1))
  mkdirSync(dir)
  const taken = (await lockCacheDir(envOf(dir)))!
  taken.release()
  expect(readdirSync(dir)).toEqual([])
})

it('a long CACHE_DIR (ADMIN_SOCKET set elsewhere): a loader on another CACHE_DIR does not hold this one', async () => {
  const parent = join(root, 'p'.repeat(110 - root.length))
  const a = join(parent, 'cache-a')
  const b = join(parent, 'cache-b')
  mkdirSync(a, { recursive: true })
  mkdirSync(b, { recursive: true })
  const more = { ADMIN_SOCKET: join(root, 'admin.sock') }
  const taken = (await lockCacheDir(envOf(a, more)))!
  stale(b)
  const other = await lockCacheDir(envOf(b, more)).then((l) => { l?.release(); return 'taken' }, (e) => (e as Error).message)
  taken.release()
  expect(other).toBe('taken')
})
