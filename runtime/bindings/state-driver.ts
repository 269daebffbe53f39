// The `state` storage driver: unstorage's fs-lite, except that every write is atomic
// (write-atomic.ts), so a reader or a crash never sees half a value.
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { defineDriver } from 'unstorage'
import fsLiteDriver from 'unstorage/drivers/fs-lite'
import { ATOMIC_TMP, writeAtomic } from './write-atomic'

/** Creates the driver for `base`. Keys map to files as in fs-lite (`a:b` is `a/b`); temporary files are never keys. */
export const atomicFsDriver = defineDriver((opts: { base: string }) => {
  const base = resolve(opts.base)
  const inner = fsLiteDriver({ base, ignore: (name: string) => ATOMIC_TMP.test(name) })
  const write = async (key: string, value: string | Uint8Array) => {
    if (/\.\.:|\.\.$/.test(key)) throw new Error(`invalid state key ${JSON.stringify(key)}`)
    const file = join(base, key.replace(/:/g, '/'))
    await mkdir(dirname(file), { recursive: true })
    await writeAtomic(file, value)
  }
  return {
    ...inner,
    name: 'atomic-fs',
    options: opts,
    setItem: (key: string, value: string) => write(key, value),
    setItemRaw: (key: string, value: Uint8Array) => write(key, value),
  }
})
