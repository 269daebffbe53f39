// writeAtomic: the data is flushed before the rename and the folder after it (a power cut cannot
// leave an empty file under the final name), and a failed write leaves no temporary behind.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'

const calls: string[] = []
let flushFails: string | null = null
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>()
  const wrap = (fh: import('node:fs/promises').FileHandle, what: string) => new Proxy(fh, {
    get(target, key) {
      const value = Reflect.get(target, key)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.push(`${String(key)} ${what}`)
        if (key === 'datasync' && flushFails) return Promise.reject(Object.assign(new Error(`${flushFails}: fdatasync`), { code: flushFails }))
        return value.apply(target, args)
      }
    },
  })
  return {
    ...fs,
    open: async (path: string, ...rest: never[]) => wrap(await fs.open(path, ...rest), path.endsWith('.tmp') ? 'tmp' : 'dir'),
    rename: async (a: string, b: string) => { calls.push('rename'); return fs.rename(a, b) },
  }
})
const { syncFile, writeAtomic } = await import('../../runtime/bindings/write-atomic')

const dirs: string[] = []
const dir = () => { const d = mkdtempSync(join(tmpdir(), 'atomic-')); dirs.push(d); return d }
afterEach(() => { calls.length = 0; flushFails = null; for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

describe('writeAtomic', () => {
  it('writes, flushes the data, renames, then flushes the folder', async () => {
    const d = dir()
    await writeAtomic(join(d, 'state.json'), '{"a":1}')
    expect(readFileSync(join(d, 'state.json'), 'utf8')).toBe('{"a":1}')
    expect(statSync(join(d, 'state.json')).mode & 0o777).toBe(0o600)
    expect(readdirSync(d)).toEqual(['state.json'])
    const at = (c: string) => calls.indexOf(c)
    expect(at('writeFile tmp')).toBeGreaterThanOrEqual(0)
    expect(at('datasync tmp')).toBeGreaterThan(at('writeFile tmp'))
    expect(at('close tmp')).toBeGreaterThan(at('datasync tmp'))
    expect(at('rename')).toBeGreaterThan(at('close tmp'))
    expect(at('sync dir')).toBeGreaterThan(at('rename'))
    expect(at('close dir')).toBeGreaterThan(at('sync dir'))
  })

  it('a failed rename leaves no temporary and the old file as it was', async () => {
    const d = dir()
    await writeAtomic(join(d, 'x'), 'old')
    // A directory under the final name: the rename fails (EISDIR), the temporary goes.
    await expect(writeAtomic(d, 'new')).rejects.toThrow()
    expect(readdirSync(join(d, '..')).filter((n) => n.startsWith(d.split('/').pop()!) && n.endsWith('.tmp'))).toEqual([])
    expect(readFileSync(join(d, 'x'), 'utf8')).toBe('old')
  })
  it('a file system without a flush (EINVAL, ENOTSUP, ENOSYS) still gets the write; a failing disk (EIO, ENOSPC) fails it', async () => {
    const d = dir()
    for (const code of ['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']) {
      flushFails = code
      await writeAtomic(join(d, 'x'), code)
      expect(readFileSync(join(d, 'x'), 'utf8')).toBe(code)
      await syncFile(join(d, 'x'))
    }
    for (const code of ['EIO', 'ENOSPC']) {
      flushFails = code
      await expect(writeAtomic(join(d, 'x'), code)).rejects.toMatchObject({ code })
      await expect(syncFile(join(d, 'x'))).rejects.toMatchObject({ code })
      expect(readFileSync(join(d, 'x'), 'utf8')).toBe('ENOSYS')
      expect(readdirSync(d)).toEqual(['x'])
    }
  })
})
