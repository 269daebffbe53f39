// hashFile (runtime/bindings/hash-file.ts): SHA-256 of a file on a worker thread; with a deadline,
// a read that hangs (a FIFO nobody writes stands for a disk that hangs) is given up with ETIMEDOUT.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, constants, openSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { hashFile } from '../../runtime/bindings/hash-file'
import { tempDir } from '../helpers/tmp'

it('hashes a file, and gives up a read that hangs once its deadline passes', async () => {
  const dir = tempDir('hash-file-')
  writeFileSync(join(dir, 'f'), 'abc')
  expect(await hashFile(join(dir, 'f'), 5000)).toBe(createHash('sha256').update('abc').digest('hex'))
  const fifo = join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const given = await hashFile(fifo, 200).then(() => undefined, (e: { code?: string; exited?: Promise<void> }) => e)
  expect(given).toMatchObject({ code: 'ETIMEDOUT' })
  // Unblock a thread-pool thread still opening the FIFO (a writer lets the open return, then EOF).
  // Read-write never blocks on Linux, whether or not the worker got as far as its open.
  closeSync(openSync(fifo, constants.O_RDWR))
  await given!.exited
})
