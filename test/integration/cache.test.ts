// The big-part cache binding on a real file system: holds against eviction, serial eviction, partials
// keyed by the small part, counted against the bound and removed when stale.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { createCache, prepareCacheDir, STALE_PARTIAL_MS } from '../../runtime/bindings/cache'
import type { BigPartCache, CacheRecord, HeldPart } from '../../shared/contract/cache'

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const dirs: string[] = []
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

async function world(maxBytes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'loader-test-cache-'))
  dirs.push(dir)
  await prepareCacheDir(dir)
  return { dir, cache: createCache(dir, maxBytes) }
}

/** Downloads `data` as the big part of `name` for a small part with hash `smallSha`, and commits it held. */
async function put(cache: BigPartCache, name: string, data: Buffer, smallSha = sha(Buffer.from(name))): Promise<HeldPart> {
  const partial = cache.partial('models', name, smallSha)
  try {
    await partial.state()
    await pipeline(Readable.from([data]), partial.append())
    const record: CacheRecord = { smallSha256: smallSha, bytes: data.length, sha256: sha(data), storedAt: new Date().toISOString() }
    return await partial.commit(record)
  } finally {
    partial.close()
  }
}

async function readAll(part: HeldPart): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of part.stream()) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

const cached = (dir: string) => readdirSync(join(dir, 'cache/models')).filter((n) => n.endsWith('.big')).sort()
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
}

describe('holds', () => {
  it('a held part is never evicted; once released, the LRU bound applies', async () => {
    const { dir, cache } = await world(100)
    const a = randomBytes(60)
    const heldA = await put(cache, 'a.bin', a)
    const heldB = await put(cache, 'b.bin', randomBytes(60))
    // Let every pass queued so far run (all parts held: none may go), so that only the release can evict.
    const settle = cache.partial('models', 'settle.bin', sha(Buffer.from('settle')))
    await settle.reserve(1)
    expect(cached(dir)).toEqual(['a.bin.big', 'b.bin.big'])
    expect((await readAll(heldA)).equals(a)).toBe(true)
    heldA.release()
    await until(() => cached(dir).length === 1)
    expect(cached(dir)).toEqual(['b.bin.big'])
    heldB.release()
    expect(cached(dir)).toEqual(['b.bin.big'])
    settle.close()
  })

  it('a part larger than the whole bound is served from its hold, then evicted', async () => {
    const { dir, cache } = await world(10)
    const data = randomBytes(5000)
    const held = await put(cache, 'big.bin', data)
    const settle = cache.partial('models', 'settle.bin', sha(Buffer.from('settle')))
    await settle.reserve(1)
    const again = held.retain()
    held.release()
    expect(cached(dir)).toEqual(['big.bin.big'])
    expect((await readAll(again)).equals(data)).toBe(true)
    expect((await again.readAt(4990, 10)).equals(data.subarray(4990))).toBe(true)
    again.release()
    await until(() => cached(dir).length === 0)
    expect(cached(dir)).toEqual([])
    settle.close()
  })

  it('acquire finds a part with its record and holds it; a replaced part is read as it was when held', async () => {
    const { cache } = await world(1 << 20)
    const v1 = randomBytes(1000)
    ;(await put(cache, 'r.bin', v1, sha(Buffer.from('v1')))).release()
    const held = (await cache.acquire('models', 'r.bin'))!
    expect(held.record.sha256).toBe(sha(v1))
    const v2 = randomBytes(2000)
    ;(await put(cache, 'r.bin', v2, sha(Buffer.from('v2')))).release()
    expect((await readAll(held)).equals(v1)).toBe(true)
    held.release()
    const now = (await cache.acquire('models', 'r.bin'))!
    expect(now.record.sha256).toBe(sha(v2))
    expect((await readAll(now)).equals(v2)).toBe(true)
    now.release()
    expect(await cache.acquire('models', 'none.bin')).toBeNull()
  })

  it('under concurrent commits and reads with a bound of one part, every held part reads its own bytes', async () => {
    const { dir, cache } = await world(1500)
    const names = ['p.bin', 'q.bin', 'r.bin', 's.bin']
    const wrong: string[] = []
    const work = Array.from({ length: 120 }, async (_, i) => {
      const name = names[i % names.length]
      let held = await cache.acquire('models', name)
      if (!held) held = await put(cache, name, randomBytes(1000), sha(Buffer.from(`${name}${i}`)))
      const body = await readAll(held)
      if (sha(body) !== held.record.sha256 || body.length !== held.record.bytes) wrong.push(`${name} ${i}`)
      held.release()
    })
    await Promise.all(work)
    expect(wrong).toEqual([])
    await until(() => cached(dir).length <= 1)
    expect(cached(dir).length).toBeLessThanOrEqual(1)
  })
})

describe('partial downloads', () => {
  it('two small parts of one name download into two partial files', async () => {
    const { cache } = await world(1 << 20)
    const one = cache.partial('models', 'x.bin', sha(Buffer.from('one')))
    const two = cache.partial('models', 'x.bin', sha(Buffer.from('two')))
    expect(one.path).not.toBe(two.path)
    await one.state()
    await two.state()
    await pipeline(Readable.from([Buffer.from('first')]), one.append())
    await pipeline(Readable.from([Buffer.from('second!')]), two.append())
    expect((await one.state()).bytes).toBe(5)
    expect((await two.state()).bytes).toBe(7)
    one.close()
    two.close()
  })

  it('count against the bound: an abandoned partial is removed to make room, one in use is not', async () => {
    const { dir, cache } = await world(100)
    const abandoned = cache.partial('models', 'old.bin', sha(Buffer.from('old')))
    await abandoned.state()
    await pipeline(Readable.from([randomBytes(70)]), abandoned.append())
    abandoned.close()
    const inUse = cache.partial('models', 'busy.bin', sha(Buffer.from('busy')))
    await inUse.state()
    await pipeline(Readable.from([randomBytes(70)]), inUse.append())
    await inUse.reserve(10)
    expect(existsSync(abandoned.path)).toBe(false)
    expect(existsSync(inUse.path)).toBe(true)
    const held = await put(cache, 'new.bin', randomBytes(20))
    expect(existsSync(inUse.path)).toBe(true)
    expect(cached(dir)).toEqual(['new.bin.big'])
    held.release()
    inUse.close()
  })

  it('stale partials and partials of the old layout are removed at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-test-cache-'))
    dirs.push(dir)
    const key = sha(Buffer.from('k'))
    mkdirSync(join(dir, 'tmp/partial/models', key), { recursive: true })
    const fresh = join(dir, 'tmp/partial/models', key, 'fresh.bin.big.part')
    const stale = join(dir, 'tmp/partial/models', key, 'stale.bin.big.part')
    const legacy = join(dir, 'tmp/partial/models/legacy.bin.big.part')
    for (const f of [fresh, stale, legacy]) writeFileSync(f, 'x')
    const old = (Date.now() - STALE_PARTIAL_MS - 60_000) / 1000
    utimesSync(stale, old, old)
    await prepareCacheDir(dir)
    expect([existsSync(fresh), existsSync(stale), existsSync(legacy)]).toEqual([true, false, false])
  })

  it('a state write a killed process left half done (writeAtomic\'s temporary) is removed at start; the state itself stays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-test-cache-'))
    dirs.push(dir)
    mkdirSync(join(dir, 'state/unlock'), { recursive: true })
    writeFileSync(join(dir, 'state/unlock/status'), '{"state":"loading"}')
    writeFileSync(join(dir, 'state/unlock/status.0123abcd.tmp'), '{"state":"lo')
    writeFileSync(join(dir, 'state/other.89abcdef.tmp'), '{')
    await prepareCacheDir(dir)
    expect([existsSync(join(dir, 'state/unlock/status')), existsSync(join(dir, 'state/unlock/status.0123abcd.tmp')), existsSync(join(dir, 'state/other.89abcdef.tmp'))])
      .toEqual([true, false, false])
  })
})

/** Bytes of every cached part and partial download on disk. */
function onDisk(dir: string): number {
  let n = 0
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith('.big') || e.name.endsWith('.big.part')) n += statSync(p).size
    }
  }
  walk(join(dir, 'cache'))
  walk(join(dir, 'tmp/partial'))
  return n
}

describe('robustness', () => {
  it('a reader that leaves early does not close the descriptor the other holders read', async () => {
    const { cache } = await world(64 << 20)
    const data = randomBytes(5 << 20)
    const held = await put(cache, 'shared.bin', data)
    const other = held.retain()
    const leaving = held.stream()
    for await (const c of leaving) {
      expect((c as Buffer).length).toBeGreaterThan(0)
      break
    }
    expect(leaving.destroyed).toBe(true)
    held.release()
    await new Promise((r) => setTimeout(r, 20))
    expect(sha(await readAll(other))).toBe(sha(data))
    expect((await other.readAt(100, 10)).equals(data.subarray(100, 110))).toBe(true)
    other.release()
  })

  it('an entry that cannot be removed is skipped: eviction goes on with the others', async () => {
    const { dir, cache } = await world(100)
    ;(await put(cache, 'stuck.bin', randomBytes(40))).release()
    ;(await put(cache, 'old.bin', randomBytes(40))).release()
    // The record of stuck.bin is a non-empty directory: removing it fails (whoever runs the test).
    const side = join(dir, 'cache/models/stuck.bin.big.json')
    rmSync(side)
    mkdirSync(side)
    writeFileSync(join(side, 'x'), 'x')
    const t = (Date.now() - 3_600_000) / 1000
    utimesSync(side, t, t)
    const p = cache.partial('models', 'new.bin', sha(Buffer.from('new')))
    await p.state()
    await p.reserve(90)
    expect(cached(dir)).toEqual(['stuck.bin.big'])
    p.close()
  })

  it('concurrent downloads count the bytes still to come: on disk never more than the bound plus one part', async () => {
    const { dir, cache } = await world(1000)
    for (let i = 0; i < 5; i++) (await put(cache, `old${i}.bin`, randomBytes(200))).release()
    const partials = [0, 1, 2].map((i) => cache.partial('models', `new${i}.bin`, sha(Buffer.from(`new${i}`))))
    const data = partials.map(() => randomBytes(400))
    let peak = 0
    // All three announce their size before any writes (the widest window for an overshoot).
    await Promise.all(partials.map(async (p) => { await p.state(); await p.reserve(400) }))
    await Promise.all(partials.map(async (p, i) => {
      for (let k = 0; k < 4; k++) {
        await pipeline(Readable.from([data[i].subarray(k * 100, k * 100 + 100)]), p.append())
        peak = Math.max(peak, onDisk(dir))
      }
    }))
    expect(peak).toBeLessThanOrEqual(1000 + 400)
    const held = await Promise.all(partials.map((p, i) => p.commit({ smallSha256: sha(Buffer.from(`new${i}`)), bytes: 400, sha256: sha(data[i]), storedAt: new Date().toISOString() })))
    for (const p of partials) p.close()
    for (const h of held) h.release()
    await until(() => onDisk(dir) <= 1000)
    expect(onDisk(dir)).toBeLessThanOrEqual(1000)
  })

  it('a download that starts while eviction removes its stale partial never fails', async () => {
    const { cache } = await world(100)
    const failures: string[] = []
    for (let i = 0; i < 60; i++) {
      const key = sha(Buffer.from(`race${i}`))
      const old = cache.partial('models', 'race.bin', key)
      await old.state()
      await pipeline(Readable.from([randomBytes(60)]), old.append())
      await old.setEtag('"e"')
      old.close()
      const other = cache.partial('models', 'other.bin', sha(Buffer.from(`other${i}`)))
      await other.state()
      const room = other.reserve(90)
      // Start the same download at various points of the removal (its ETag gone, its file gone).
      const gone = i % 3 === 0 ? `${old.path}.json` : old.path
      for (let k = 0; k < 1000 && existsSync(gone); k++) await new Promise((r) => setImmediate(r))
      const again = cache.partial('models', 'race.bin', key)
      await again.state().catch((e) => failures.push(`${i}: ${String(e)}`))
      await room
      again.close()
      await other.remove()
      other.close()
    }
    expect(failures).toEqual([])
  })

  it('an ETag record a killed process left half-written beside a partial download is removed at start; the partial stays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-test-cache-'))
    dirs.push(dir)
    const keyDir = join(dir, 'tmp/partial/models', sha(Buffer.from('k')))
    mkdirSync(keyDir, { recursive: true })
    const keep = ['m.bin.big.part', 'm.bin.big.part.json'].map((n) => join(keyDir, n))
    const left = join(keyDir, 'm.bin.big.part.json.0123abcd.tmp')
    for (const f of [...keep, left]) writeFileSync(f, 'x')
    await prepareCacheDir(dir)
    expect([...keep, left].map((f) => existsSync(f))).toEqual([true, true, false])
  })

  it('a cached part without its record (a process killed between the rename and the record, or mid-eviction) is removed at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-test-cache-'))
    dirs.push(dir)
    mkdirSync(join(dir, 'cache/models'), { recursive: true })
    const keep = ['m.bin.big', 'm.bin.big.json'].map((n) => join(dir, 'cache/models', n))
    const orphan = join(dir, 'cache/models', 'o.bin.big')
    for (const f of [...keep, orphan]) writeFileSync(f, 'x')
    await prepareCacheDir(dir)
    expect([...keep, orphan].map((f) => existsSync(f))).toEqual([true, true, false])
  })

  it('temporaries a killed process left beside cached parts are removed at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-test-cache-'))
    dirs.push(dir)
    mkdirSync(join(dir, 'cache/models'), { recursive: true })
    const keep = ['m.bin.big', 'm.bin.big.json'].map((n) => join(dir, 'cache/models', n))
    const left = ['m.bin.big.0123abcd.tmp', 'm.bin.big.json.89abcdef.tmp'].map((n) => join(dir, 'cache/models', n))
    for (const f of [...keep, ...left]) writeFileSync(f, 'x')
    await prepareCacheDir(dir)
    expect([...keep, ...left].map((f) => existsSync(f))).toEqual([true, true, false, false])
  })
})
