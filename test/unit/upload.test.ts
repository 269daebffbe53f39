// The upload flow's commit order, its serialisation per folder/filename and its local write failures (MSW upstreams).
import { createWriteStream, readdirSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { http, HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import { API } from '../mocks/resource-api'
import { CDN } from '../mocks/cdn'
import { server } from '../mocks/server'
import { contractWorld } from '../helpers/contract'

type World = Awaited<ReturnType<typeof contractWorld>>

const raw = (w: World, name: string, data: Buffer, folder = 'models') => w.app.request(`/upload/${name}?folder=${folder}`, {
  method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data),
})

/** Records every write to both upstreams, in order: `big:<key>` on the CDN, the file name on the API. */
function recordWrites(): string[] {
  const order: string[] = []
  server.use(
    http.put(`${CDN}/:bucket/:key`, ({ params }) => { order.push(`big:${params.bucket}/${params.key}`); return undefined }),
    http.post(`${API}/resources/:folder`, async ({ request }) => {
      order.push(((await request.clone().formData()).get('data') as File).name)
      return undefined
    }),
  )
  return order
}

/** Makes the next big-part PUT wait until `release()`; `reached` resolves when it has begun. */
function holdNextPut() {
  let release!: () => void
  let reached!: () => void
  const gate = new Promise<void>((ok) => { release = ok })
  const began = new Promise<void>((ok) => { reached = ok })
  let once = true
  server.use(http.put(`${CDN}/:bucket/:key`, async () => {
    if (!once) return undefined
    once = false
    reached()
    await gate
    return undefined
  }))
  return { release, reached: began }
}

/** Replaces the temporary file's write stream with one that fails as the device would. */
function failTempWrites(w: World, make: () => Writable) {
  const temp = w.env.cache.temp.bind(w.env.cache)
  w.env.cache.temp = (label) => ({ ...temp(label), write: make })
}

const errno = (code: string) => () => new Writable({
  write(_c, _e, done) { done(Object.assign(new Error(`${code}: simulated, write`), { code, syscall: 'write', errno: -1 })) },
})

describe('upload commit order', () => {
  it('writes the big part, then the manifest, then the small part (the commit point), then caches', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const order = recordWrites()
    const r = await raw(w, 'o.bin', randomBytes(40_000))
    expect(r.status).toBe(201)
    expect(order).toEqual(['big:models/o.bin.big', 'o.bin.manifest', 'o.bin.small'])
    expect(await w.env.cache.record('models', 'o.bin')).not.toBeNull()
  })

  it('answers 201 when the local cache cannot take the part after the small part was committed', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const commit = w.env.cache.commit
    w.env.cache.commit = async () => { throw Object.assign(new Error('EACCES: permission denied, rename'), { code: 'EACCES', syscall: 'rename' }) }
    const data = randomBytes(30_000)
    const r = await raw(w, 'c.bin', data)
    expect(r.status).toBe(201)
    expect((await r.json()).bytes).toBe(30_000)
    expect(w.api.state.files.has('models/c.bin.small')).toBe(true)
    expect(w.logs.join('')).toMatch(/stored upstream but not in the local cache/)
    // Other devices (and this one, once its cache works) load it from upstream.
    w.env.cache.commit = commit
    const load = await w.req('/load/c.bin')
    expect(load.status).toBe(200)
    expect(Buffer.from(await load.arrayBuffer()).equals(data)).toBe(true)
  })
})

describe('concurrent uploads of one name', () => {
  it('the second answers 409 while the first runs; other names and a later upload go through', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const hold = holdNextPut()
    const a = randomBytes(20_000)
    const first = raw(w, 'same.bin', a)
    await hold.reached
    const second = await raw(w, 'same.bin', randomBytes(20_000))
    expect(second.status).toBe(409)
    expect(second.headers.get('content-type')).toBe('application/problem+json')
    expect(await second.json()).toMatchObject({ status: 409, type: 'https://loader.local/problems/upload-in-progress' })
    // The same name in another folder, and another name, are not held up.
    expect((await raw(w, 'same.bin', randomBytes(100), 'other-folder')).status).toBe(201)
    expect((await raw(w, 'different.bin', randomBytes(100))).status).toBe(201)
    hold.release()
    expect((await first).status).toBe(201)
    expect(w.api.state.files.get('models/same.bin.manifest')).toBeDefined()
    const load = await w.req('/load/same.bin')
    expect(Buffer.from(await load.arrayBuffer()).equals(a)).toBe(true)
    // Once the first has ended, the name is free again.
    expect((await raw(w, 'same.bin', randomBytes(100))).status).toBe(201)
  })

  it('a multipart upload naming the folder in a field is serialised too', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const hold = holdNextPut()
    const first = raw(w, 'mp.bin', randomBytes(20_000), 'other-folder')
    await hold.reached
    const form = new FormData()
    form.append('folder', 'other-folder')
    form.append('data', new Blob([new Uint8Array(randomBytes(1000))]), 'mp.bin')
    const second = await w.app.request('/upload/mp.bin', { method: 'POST', body: form })
    expect(second.status).toBe(409)
    hold.release()
    expect((await first).status).toBe(201)
  })
})

describe('multipart upload fields', () => {
  const upload = (w: World, form: FormData, query = '') => w.app.request(`/upload/mp.bin${query}`, { method: 'POST', body: form })
  const file = () => new Blob([new Uint8Array(randomBytes(1000))])

  it('a "folder" sent as a file part is the folder, not ignored', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const order = recordWrites()
    const form = new FormData()
    form.append('folder', new Blob(['other-folder']), 'folder.txt')
    form.append('data', file(), 'mp.bin')
    const r = await upload(w, form)
    expect(r.status).toBe(201)
    expect((await r.json()).folder).toBe('other-folder')
    expect(order[0]).toBe('big:other-folder/mp.bin.big')
  })

  it('a second "data" part is 400 and nothing is sent upstream', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const order = recordWrites()
    const form = new FormData()
    form.append('folder', 'models')
    form.append('data', file(), 'mp.bin')
    form.append('data', file(), 'other.bin')
    const r = await upload(w, form)
    expect(r.status).toBe(400)
    expect((await r.json()).detail).toMatch(/more than one "data"/)
    expect(order).toEqual([])
  })

  it('a multipart "folder" that disagrees with ?folder= is 422 and nothing is sent upstream', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const order = recordWrites()
    const form = new FormData()
    form.append('folder', 'other-folder')
    form.append('data', file(), 'mp.bin')
    const r = await upload(w, form, '?folder=models')
    expect(r.status).toBe(422)
    expect((await r.json()).detail).toMatch(/disagree/)
    expect(order).toEqual([])
    // The same folder in both places is fine.
    const same = new FormData()
    same.append('folder', 'models')
    same.append('data', file(), 'mp.bin')
    expect((await upload(w, same, '?folder=models')).status).toBe(201)
  })
})

describe('Resource API answers to the upload writes', () => {
  // A 404 to a write is not "no such resource" (the caller's fault) but the Resource API failing.
  it.each([['the manifest', 1], ['the small part', 2]] as const)('a 404 to %s write is 502, one-pass and staged', async (_what, nth) => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    let writes = 0
    server.use(http.post(`${API}/resources/:folder`, () => (++writes % 2 === nth % 2 ? HttpResponse.json({ error: 'unknown folder' }, { status: 404 }) : undefined)))
    const r = await raw(w, 'w404.bin', randomBytes(5000))
    expect(r.status).toBe(502)
    expect((await r.json()).type).toMatch(/upstream-error/)
    writes = 0
    const form = new FormData()
    form.append('folder', 'models')
    form.append('data', new Blob([new Uint8Array(randomBytes(5000))]), 'w404.bin')
    const m = await w.app.request('/upload/w404.bin', { method: 'POST', body: form })
    expect(m.status).toBe(502)
  })
})

describe('local write failures on upload', () => {
  it.each([
    ['ENOSPC (a full disk, /dev/full)', () => createWriteStream('/dev/full'), 507, 'ENOSPC'],
    ['EDQUOT', errno('EDQUOT'), 507, 'EDQUOT'],
    ['EROFS', errno('EROFS'), 507, 'EROFS'],
    ['EACCES', errno('EACCES'), 507, 'EACCES'],
  ] as const)('%s: a problem that names it, never "body ended early"; nothing sent upstream', async (_name, make, status, code) => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    failTempWrites(w, make)
    const r = await raw(w, 'full.bin', randomBytes(3 << 20))
    expect(r.status).toBe(status)
    const problem = await r.json()
    expect(problem).toMatchObject({ status, code })
    expect(problem.detail).toContain(code)
    expect(problem.detail).not.toMatch(/ended early/)
    expect(w.cdn.calls.filter((c) => c.method === 'PUT')).toEqual([])
    expect(w.api.state.files.has('models/full.bin.small')).toBe(false)
    expect(readdirSync(`${w.cacheDir}/tmp`).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('a temporary file that cannot be read back for the PUT is a local problem (507 naming EIO), not the CDN\'s', async () => {
    const w = await contractWorld()
    expect((await w.login()).status).toBe(200)
    const temp = w.env.cache.temp.bind(w.env.cache)
    w.env.cache.temp = (label) => ({ ...temp(label), read: () => new Readable({
      read() { this.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', syscall: 'read' })) },
    }) })
    const r = await raw(w, 'eio.bin', randomBytes(50_000))
    expect(r.status).toBe(507)
    expect(await r.json()).toMatchObject({ code: 'EIO', type: 'https://loader.local/problems/local-storage' })
    expect(w.api.state.files.has('models/eio.bin.small')).toBe(false)
  })
})
