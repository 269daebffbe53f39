// hashFile (runtime/bindings/hash-file.ts): SHA-256 of a file on a worker thread; with a deadline,
// a read that hangs (a FIFO nobody writes stands for a disk that hangs) is given up with ETIMEDOUT.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, openSync, writeFileSync } from 'node:fs'
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
  await expect(hashFile(fifo, 200)).rejects.toMatchObject({ code: 'ETIMEDOUT' })
  // Unblock the thread-pool thread still opening the FIFO (a writer lets the open return, then EOF).
  closeSync(openSync(fifo, 'w'))
})
