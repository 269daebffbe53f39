// Two loaders on one CACHE_DIR, each pid 1 of its own pid namespace (the image runs node as the
// container's pid 1; two containers on one volume, e.g. during a rolling update): the second stops
// at the lock, before its start-up clean-up, and leaves the first one's files and lock alone.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { freePort, ROOT, waitFor } from '../helpers/spawn'
import { tempDir } from '../helpers/tmp'
import { SALTS } from '../helpers/vectors'

// Needs user and pid namespaces (not granted under some container sandboxes): probed, else skipped.
const probe = spawnSync('unshare', ['-rp', '--fork', '--mount-proc', 'true'], { encoding: 'utf8' })
const canUnshare = probe.status === 0
if (!canUnshare) console.warn(`pid-namespace test skipped: unshare -rp is not allowed here (${(probe.stderr || probe.error?.message || '').trim()})`)

let first: ChildProcess | undefined
let port = 0
afterAll(async () => {
  if (first && first.exitCode === null) {
    // unshare waits for its child; SIGKILL ends it and --kill-child sends the loader SIGTERM.
    first.kill('SIGKILL')
    await new Promise((r) => first!.once('exit', r))
    for (let i = 0; i < 100 && await fetch(`http://127.0.0.1:${port}/health`).then(() => true, () => false); i++) await new Promise((r) => setTimeout(r, 100))
  }
})

it.runIf(canUnshare)('a second loader in another pid namespace stops at the lock and leaves the first one\'s files and lock', async () => {
  const dir = tempDir('loader-e2e-lock-ns-')
  port = await freePort()
  const env = { PATH: process.env.PATH, ...SALTS, CACHE_DIR: dir, HARDWARE_FINGERPRINT: 'test' }
  const asPid1 = ['-rp', '--kill-child=SIGTERM', '--mount-proc', process.execPath, join(ROOT, 'dist/runtime.mjs')]
  first = spawn('unshare', asPid1, { env: { ...env, PORT: String(port) }, stdio: 'ignore' })
  await waitFor(`http://127.0.0.1:${port}/health`)
  for (let i = 0; i < 100 && !existsSync(join(dir, 'loader.lock.sock')); i++) await new Promise((r) => setTimeout(r, 50))
  const lock = readFileSync(join(dir, 'loader.lock'), 'utf8')
  expect(lock.split('\n')[0]).toBe('1')
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  const inProgress = join(dir, 'tmp', 'upload-1-0123456789ab.tmp')
  writeFileSync(inProgress, 'in progress')
  // Not a lock whose writer may still be starting: its liveness socket decides at once.
  utimesSync(join(dir, 'loader.lock'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
  const second = spawnSync('unshare', asPid1, { env: { ...env, PORT: '0' }, encoding: 'utf8', timeout: 15_000 })
  expect(second.status).toBe(1)
  expect(second.stderr).toMatch(/CACHE_DIR: .* is in use by another loader \(pid 1,/)
  expect(readFileSync(inProgress, 'utf8')).toBe('in progress')
  expect(readFileSync(join(dir, 'loader.lock'), 'utf8')).toBe(lock)
  expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
})
