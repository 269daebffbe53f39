// The CACHE_DIR lock: release() when the lock is no longer ours (another container's loader, also pid 1,
// rewrote it and bound its own liveness socket at the same path) still removes THAT loader's
// socket file: server.close() makes libuv unlink the path it bound, whoever's file is there now.
// The other loader then no longer answers, and a third loader in another pid namespace takes its lock.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { Env } from '../../shared/contract/function'
import { parseConfig } from '../../runtime/config'
import { lockCacheDir } from '../../runtime/deploy/cache-lock'
import { SALTS } from '../helpers/vectors'

const dir = mkdtempSync(join(tmpdir(), 'loader-test-lock-rel-'))
let other: Server | undefined
afterAll(async () => { await new Promise((r) => other ? other.close(r) : r(undefined)); rmSync(dir, { recursive: true, force: true }) })
const quiet = { info() {}, warn() {}, error() {}, debug() {}, child() { return quiet } }

it('release() leaves the lock AND the liveness socket of the loader that holds it now', async () => {
  const lock = join(dir, 'loader.lock')
  const taken = (await lockCacheDir({ config: parseConfig({ ...SALTS, CACHE_DIR: dir }), log: quiet, warnings: [] } as unknown as Env))!
  // Another loader (pid 1 in its container) holds it now: its lock, its socket at the same path.
  writeFileSync(lock, '1\n')
  rmSync(`${lock}.sock`)
  other = await new Promise<Server>((ok) => { const s = createServer((c) => c.destroy()); s.listen(`${lock}.sock`, () => ok(s)) })
  taken.release()
  expect(existsSync(lock)).toBe(true)
  expect(existsSync(`${lock}.sock`)).toBe(true)
})
