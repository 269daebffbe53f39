// A disk that hangs costs the discard checks one thread-pool thread, not the pool: a hash given up at
// its deadline keeps its thread until its worker really ends, and the next hash waits for that, so
// the process's other file and crypto calls go on. (The deadline is cut to 100 ms here; a FIFO whose
// reads wait stands for a bad sector.)
import { execFileSync } from 'node:child_process'
import { constants, mkdirSync, renameSync, writeFileSync, writeSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it, vi } from 'vitest'
import { tempDir } from '../helpers/tmp'

vi.mock('../../runtime/bindings/hash-file', async (original) => {
  const real = (await original()) as typeof import('../../runtime/bindings/hash-file')
  return { hashFile: (path: string) => real.hashFile(path, 100) }
})
const { createDiscard } = await import('../../runtime/bindings/cache/discard')
const { createEviction } = await import('../../runtime/bindings/cache/eviction')
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms))

it('failing loads of a part on a disk that hangs leave the thread pool to the rest of the process', async () => {
  const dir = tempDir('discard-pool-')
  const root = join(dir, 'cache')
  const partial = join(dir, 'tmp', 'partial')
  mkdirSync(join(root, 'f'), { recursive: true })
  mkdirSync(partial, { recursive: true })
  writeFileSync(join(dir, 'other'), 'x')
  const discard = createDiscard(createEviction(root, partial, 1e9))
  const path = join(root, 'f', 'x.big')
  execFileSync('mkfifo', [path])
  const fh = await open(path, constants.O_RDWR) // a writer is there: the hash's open returns, its reads wait
  await discard(path, fh, { sha256: 'x' } as never) // given up after 100 ms: no verdict
  // More failing loads, more checks: none may take another thread while the first is stuck.
  for (let i = 0; i < 4; i++) {
    void discard(path, fh, { sha256: 'x' } as never).catch(() => {})
    await sleep(150)
  }
  const r = await Promise.race([readFile(join(dir, 'other'), 'utf8'), sleep(2000).then(() => 'the thread pool is taken')])
  // Free the stuck read (data, then EOF); the queued hash then reads a plain file put at the path.
  writeFileSync(join(dir, 'plain'), 'p')
  renameSync(join(dir, 'plain'), path)
  writeSync(fh.fd, 'unblock')
  await fh.close()
  expect(r).toBe('x')
})

it('never removes a good part committed under the name while the check waited, even on the old inode number', async () => {
  const { createHash } = await import('node:crypto')
  const { existsSync, rmSync, statSync } = await import('node:fs')
  const sha = (s: string) => createHash('sha256').update(s).digest('hex')
  const dir = tempDir('discard-inode-')
  const root = join(dir, 'cache')
  const partial = join(dir, 'tmp', 'partial')
  mkdirSync(join(root, 'f'), { recursive: true })
  mkdirSync(partial, { recursive: true })
  const discard = createDiscard(createEviction(root, partial, 1e9))
  const path = join(root, 'f', 'x.big')
  writeFileSync(path, 'corrupt-old-part')
  const fh = await open(path, 'r')
  const ino = (await fh.stat()).ino
  const job = discard(path, fh, { sha256: sha('old-part') } as never)
  await fh.close() // the failing load lets go at once
  // Evicted, downloaded again: the new good part (same size) may get the freed inode number.
  rmSync(path)
  writeFileSync(join(root, 'f', 'staged'), 'new-good-part!!!')
  renameSync(join(root, 'f', 'staged'), path)
  writeFileSync(`${path}.json`, JSON.stringify({ sha256: sha('new-good-part!!!') }))
  if (statSync(path).ino !== ino) console.warn('(the file system did not reuse the inode number: the guard is tested on its identity only)')
  await job // the real hash reads the new part at the path: not the old record's bytes
  expect(existsSync(path)).toBe(true)
})
