// The `state` storage driver: unstorage's fs-lite, except that every write is atomic
// (a temporary file renamed over the old one), so a reader or a crash never sees half a value.
import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { defineDriver } from 'unstorage'
import fsLiteDriver from 'unstorage/drivers/fs-lite'

const TMP = /^\..*\.tmp$/

/**
 * Creates the driver for `base`. Keys map to files as in fs-lite (`a:b` is `a/b`);
 * temporary files (`.name.<random>.tmp`) are never listed as keys.
 */
export const atomicFsDriver = defineDriver((opts: { base: string }) => {
  const base = resolve(opts.base)
  const inner = fsLiteDriver({ base, ignore: (name: string) => TMP.test(name.split('/').pop() ?? '') })
  const path = (key: string) => {
    if (/\.\.:|\.\.$/.test(key)) throw new Error(`invalid state key ${JSON.stringify(key)}`)
    return join(base, key.replace(/:/g, '/'))
  }
  const write = async (key: string, value: string | Uint8Array) => {
    const file = path(key)
    const tmp = join(dirname(file), `.${file.split('/').pop()}.${randomBytes(6).toString('hex')}.tmp`)
    await mkdir(dirname(file), { recursive: true })
    try {
      await writeFile(tmp, value, { mode: 0o600 })
      await rename(tmp, file)
    } catch (e) {
      await rm(tmp, { force: true })
      throw e
    }
  }
  return {
    ...inner,
    name: 'atomic-fs',
    options: opts,
    setItem: (key: string, value: string) => write(key, value),
    setItemRaw: (key: string, value: Uint8Array) => write(key, value),
  }
})
