// Local storage failures (full disk, unwritable volume) as 507 problems: one mapping of the error
// codes for both flows, each naming its own type for an unwritable device; and a load whose
// partial file cannot be written answers it, on both download paths, leaving no partial file.
import { existsSync } from 'node:fs'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { isLocalFsError, localStorageErrorCode, localStorageProblem, markLocal } from '../../shared/http/local-storage-error'
import { seedChunked } from '../helpers/chunked-seed'
import { HttpError } from '../../shared/contract/http-error'
import { contractWorld } from '../helpers/contract'

const errno = (code: string, syscall = 'write') => Object.assign(new Error(`${code}: failed, ${syscall}`), { code, syscall })

describe('localStorageErrorCode / localStorageProblem', () => {
  it.each([
    ['ENOSPC', 'disk-full'], ['EDQUOT', 'disk-full'], ['EFBIG', 'disk-full'],
    ['EROFS', 'cache-not-writable'], ['EACCES', 'cache-not-writable'], ['EPERM', 'cache-not-writable'], ['EIO', 'cache-not-writable'],
  ])('%s is a local storage failure: 507 %s naming the code', async (code, type) => {
    const e = errno(code)
    expect(localStorageErrorCode(e)).toBe(code)
    const p = localStorageProblem(e, 'the big part of models/m.bin', 'cache-not-writable')
    expect(p.status).toBe(507)
    expect(p.type).toBe(`https://loader.local/problems/${type}`)
    expect(p.message).toContain(`(${code})`)
    expect(p.message).toContain('the big part of models/m.bin')
    expect(p.cause).toBe(e)
    expect(await p.getResponse().json()).toMatchObject({ status: 507, code, type: p.type })
  })

  it('an unwritable device takes the type the flow names; a full one is always disk-full', () => {
    expect(localStorageProblem(errno('EROFS'), 'the upload', 'local-storage').type).toBe('https://loader.local/problems/local-storage')
    expect(localStorageProblem(errno('ENOSPC'), 'the upload', 'local-storage').type).toBe('https://loader.local/problems/disk-full')
    // A local file error of another kind (known to come from a local file) is an unusable device too.
    expect(localStorageProblem(errno('EMFILE', 'open'), 'the upload', 'local-storage')).toMatchObject({ status: 507, extra: { code: 'EMFILE' } })
  })

  it('network and other errors are not local storage failures', () => {
    expect(localStorageErrorCode(errno('ECONNRESET', 'read'))).toBeUndefined()
    expect(localStorageErrorCode(errno('ENOENT', 'open'))).toBeUndefined()
    expect(localStorageErrorCode(new Error('plain'))).toBeUndefined()
    expect(localStorageErrorCode(undefined)).toBeUndefined()
    expect(isLocalFsError(errno('EIO', 'read'))).toBe(true)
    expect(isLocalFsError(Object.assign(new Error('x'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))).toBe(false)
  })
})

describe('a load whose partial file cannot be written', () => {
  /** Every append to a partial file fails with `code`, as a full or read-only disk does. */
  const failAppends = (w: Awaited<ReturnType<typeof contractWorld>>, code: string) => {
    const own = w.env.cache.partial.bind(w.env.cache)
    const paths: string[] = []
    w.env.cache.partial = (folder, filename, smallSha256) => {
      const p = own(folder, filename, smallSha256)
      paths.push(p.path)
      return { ...p, path: p.path, append: () => new Writable({ write(_c, _e, done) { done(errno(code)) } }) }
    }
    return paths
  }

  it.each([
    ['ENOSPC', 'disk-full', /disk is full \(ENOSPC\)/, false],
    ['EROFS', 'cache-not-writable', /cannot be written \(EROFS\)/, false],
    ['ENOSPC', 'disk-full', /disk is full \(ENOSPC\)/, true],
    ['EACCES', 'cache-not-writable', /cannot be written \(EACCES\)/, true],
  ] as const)('%s: 507 %s (detail %s), no CDN retry, the partial file removed; chunk hashes: %s', async (code, type, detail, chunked) => {
    const w = await contractWorld()
    if (chunked) seedChunked(w, 'm.bin', 100_000, 16 * 1024)
    else w.seed('m.bin', Buffer.alloc(100_000, 1))
    expect((await w.login()).status).toBe(200)
    const paths = failAppends(w, code)
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(507)
    const problem = await r.json()
    expect(problem).toMatchObject({ status: 507, code, type: `https://loader.local/problems/${type}` })
    expect(problem.detail).toMatch(detail)
    expect(problem.detail).toContain('models/m.bin')
    // A local failure is not the CDN's: the body was asked for once.
    expect(w.cdn.calls.filter((c) => c.method === 'GET')).toHaveLength(1)
    expect(paths.length).toBeGreaterThan(0)
    for (const p of paths) expect(existsSync(p)).toBe(false)
    expect(w.logs.join('')).toContain(code)
  })
})

describe('a load whose partial file fails with a code outside the list', () => {
  // The file-descriptor limit reached, or tmp/partial removed under the loader: the error is the
  // partial file's, so it is a 507, not blamed on the CDN (and retried) nor a 500.
  it.each([['ENOENT', false], ['EMFILE', false], ['ENOENT', true], ['EMFILE', true]] as const)('%s (chunk hashes: %s): 507 cache-not-writable naming the code, one CDN GET', async (code, chunked) => {
    const w = await contractWorld()
    if (chunked) seedChunked(w, 'm.bin', 100_000, 16 * 1024)
    else w.seed('m.bin', Buffer.alloc(100_000, 1))
    expect((await w.login()).status).toBe(200)
    const own = w.env.cache.partial.bind(w.env.cache)
    w.env.cache.partial = (f, n, s) => {
      const p = own(f, n, s)
      return { ...p, path: p.path, append: () => new Writable({ write(_c, _e, done) { done(errno(code)) } }) }
    }
    const r = await w.req('/load/m.bin')
    const problem = await r.json()
    expect(problem).toMatchObject({ status: 507, code, type: 'https://loader.local/problems/cache-not-writable' })
    expect(problem.detail).toMatch(new RegExp(`cannot be used \\(${code}\\)`))
    expect(w.cdn.calls.filter((c) => c.method === 'GET')).toHaveLength(1)
  })

  it('a marked local error maps whatever its code; EFBIG says the file is too large for the file system', () => {
    expect(localStorageErrorCode(markLocal(errno('ENOENT', 'open')))).toBe('ENOENT')
    expect(localStorageErrorCode(errno('ENOENT', 'open'))).toBeUndefined()
    // A problem already decided is never turned into a storage failure.
    expect(localStorageErrorCode(markLocal(new HttpError(502, 'the CDN failed', { type: 'upstream-error' })))).toBeUndefined()
    expect(localStorageProblem(errno('EFBIG'), 'the upload', 'local-storage')).toMatchObject({ status: 507, type: 'https://loader.local/problems/disk-full' })
    expect(localStorageProblem(errno('EFBIG'), 'the upload', 'local-storage').message).toMatch(/no file this large \(EFBIG\)/)
    expect(localStorageProblem(errno('EIO', 'read'), 'the upload', 'local-storage').message).toMatch(/cannot be used \(EIO\)/)
  })
})
