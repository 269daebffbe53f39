// The `state` driver: a reader racing a writer never sees half a value; temp files are not keys.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createStorage, type Storage } from 'unstorage'
import fsLiteDriver from 'unstorage/drivers/fs-lite'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp'
import { atomicFsDriver } from '../../runtime/bindings/state-driver'

/** Writes a large value 150 times while reading it back as fast as possible; returns the torn reads. */
async function tornReads(state: Storage): Promise<number> {
  const value = (i: number) => ({ i, pad: 'x'.repeat(256 * 1024) })
  await state.setItem('unlock:status', value(0))
  let writing = true
  let torn = 0
  const reader = (async () => {
    while (writing) {
      const v = await state.getItem<{ i: number; pad: string }>('unlock:status')
      if (typeof v !== 'object' || v === null || v.pad?.length !== 256 * 1024) torn++
    }
  })()
  for (let i = 1; i <= 150; i++) await state.setItem('unlock:status', value(i))
  writing = false
  await reader
  return torn
}

describe('state driver', () => {
  it('fs-lite alone can be read half-written (the reason for the atomic driver)', async () => {
    const state = createStorage({ driver: fsLiteDriver({ base: tempDir('state-lite-') }) })
    expect(await tornReads(state)).toBeGreaterThan(0)
  })

  it('atomic writes: every concurrent read is a whole value, and no temp file is left or listed', async () => {
    const base = tempDir('state-atomic-')
    const state = createStorage({ driver: atomicFsDriver({ base }) })
    expect(await tornReads(state)).toBe(0)
    expect(await state.getItem('unlock:status')).toMatchObject({ i: 150 })
    expect(await state.getKeys()).toEqual(['unlock:status'])
    expect(readdirSync(join(base, 'unlock'))).toEqual(['status'])
    await state.removeItem('unlock:status')
    expect(await state.getItem('unlock:status')).toBeNull()
  })

  it('refuses a key that climbs out of its folder', async () => {
    const driver = atomicFsDriver({ base: tempDir('state-atomic-') })
    await expect(async () => driver.setItem!('..:escape', '1', {})).rejects.toThrow(/invalid state key/)
  })
})
