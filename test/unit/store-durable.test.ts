// A release reaches the disk before its folder is renamed into the store: the three files and the
// staged folder are flushed first, the store's folder after the rename (else a power cut could leave
// pointers naming a release whose files never made it).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it, vi } from 'vitest'

const calls: string[] = []
vi.mock('node:fs/promises', async (importOriginal) =>
  (await import('../helpers/flush-recorder')).recordFlushes(await importOriginal<typeof import('node:fs/promises')>(), calls))
const { createStore } = await import('../../runtime/deploy/store')

const dirs: string[] = []
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

it('flushes the staged files and folder before the rename, and the store folder after it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'loader-test-store-'))
  dirs.push(root)
  const store = createStore(root)
  await store.init()
  const staged = await store.stage('probe', { artifact: Buffer.from('export default {}'), json: Buffer.from('{}'), sig: Buffer.from('sig') })
  const dir = await store.commit(staged, { function: 'probe', version: 3, sha256: 'ab'.repeat(32) } as never)
  const rename = calls.findIndex((c) => c.startsWith(`rename ${staged} -> ${dir}`))
  expect(rename).toBeGreaterThan(0)
  const before = calls.slice(0, rename)
  for (const f of ['probe.mjs', 'release.json', 'release.sig']) expect(before).toContain(`flush ${join(staged, f)}`)
  expect(before).toContain(`flush ${staged}`)
  expect(calls.slice(rename + 1)).toContain(`flush ${join(root, 'functions', 'probe')}`)
})
