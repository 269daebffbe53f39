// The verified download (crypto.md §5c) on a slow disk: bytes a cut CDN attempt left queued in its
// write stream must land where they were hashed, never behind the truncation of a restart, so a
// caller gets only verified bytes and the cache only the right part (regression of c633a23).
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import { chunkedKey } from '../../functions/load/chunked-download'
import type { DownloadJob } from '../../functions/load/download-job'
import { seedChunked } from '../helpers/chunked-seed'
import { contractWorld } from '../helpers/contract'
import { slowDisk } from '../helpers/slow-disk'
import { firstPlainGet } from '../mocks/cdn'
import { server } from '../mocks/server'
import { drain } from '../helpers/drain'

const CB = 16 * 1024
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** The first offset where `got` differs from `want`, -1 when `got` is a prefix of it. */
function firstDifference(got: Buffer, want: Buffer): number {
  if (got.length > want.length) return want.length
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return i
  return -1
}

describe('verified download on a slow disk (crypto.md §5c)', () => {
  // cutAt: bytes of the big part the first GET delivers before the connection is reset; the
  // bytes of its last, incomplete chunk are tampered (never verified, so never to be sent).
  it.each([
    { what: 'inside the first chunk (the restart is allowed: the caller gets the whole body)', cutAt: CB / 2, verifiedFirst: 0 },
    { what: 'after two verified chunks (the restart is refused: the caller gets those, then a cut)', cutAt: 2 * CB + CB / 2, verifiedFirst: 2 },
  ])('a cut $what: writes the cut attempt left queued never land behind the restart\'s truncation', async ({ cutAt, verifiedFirst }) => {
    const w = await contractWorld({ CDN_READ_RETRIES: '2' })
    const { plain, small, big } = seedChunked(w, 'm.bin', 6 * CB, CB)
    expect((await w.login()).status).toBe(200)
    const disk = slowDisk(w.env.cache)
    const whole = w.cdn.objects.get('models/m.bin.big')!
    const first = whole.etag
    const key = chunkedKey('models', 'm.bin', sha(small))
    const seen = Buffer.from(big.subarray(0, cutAt))
    seen[cutAt - 10] ^= 0x5a
    let job: DownloadJob | undefined
    let onDiskAtCut = -1
    server.use(firstPlainGet('models/m.bin.big', () => {
      const stream = new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(seen))
          // Once the loader queued every byte it got (none of them on disk yet), the object is
          // written again (a new ETag: the resume is refused with 412) and the connection drops.
          void disk.writtenAtLeast(cutAt).then(() => {
            job = w.env.downloads.get<DownloadJob>(key)
            onDiskAtCut = readFileSync(job!.partial.path).length
            whole.etag = '"rewritten"'
            c.error(new Error('connection reset'))
          })
        },
      })
      return new HttpResponse(stream, { status: 200, headers: { etag: first, ...whole.meta } })
    }))

    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(200)
    const { got, cut: wasCut } = await drain(r)
    await job!.settled
    disk.restore()
    expect(onDiskAtCut).toBe(0)
    // Only verified bytes, in order: a prefix of the plaintext.
    expect(firstDifference(got, plain)).toBe(-1)
    const gets = w.cdn.calls.filter((c) => c.method === 'GET').map((c) => c.range)
    expect(gets[0]).toBe(`bytes=${cutAt}-`)
    const committed = w.env.cache.pathOf('models', 'm.bin')
    if (verifiedFirst === 0) {
      // Restarted from zero: the whole body, and the cache holds exactly the big part.
      expect(wasCut).toBe(false)
      expect(got.length).toBe(plain.length)
      expect(gets).toEqual([`bytes=${cutAt}-`, undefined])
      expect(readFileSync(committed).equals(big)).toBe(true)
      expect(existsSync(job!.partial.path)).toBe(false)
    } else {
      // The verified chunks were sent: the object changed under them, so the answer is cut.
      expect(wasCut).toBe(true)
      // Exactly the plaintext of small || the verified chunks, less the IV and the block kept for the padding check.
      expect(got.length).toBe(Math.floor((small.length + verifiedFirst * CB - 16) / 16) * 16 - 16)
      expect(existsSync(committed)).toBe(false)
      // The partial file kept holds what the verifier saw, at the place it saw it.
      expect(readFileSync(job!.partial.path).equals(seen)).toBe(true)
    }

    // The next load is byte-exact (from the cache, or downloaded again over the kept partial).
    const again = await w.req('/load/m.bin')
    expect(again.status).toBe(200)
    const downloading = w.env.downloads.get<DownloadJob>(key)
    expect(Buffer.from(await again.arrayBuffer()).equals(plain)).toBe(true)
    await downloading?.settled
    expect(readFileSync(committed).equals(big)).toBe(true)
    expect(w.logs.join('')).not.toMatch(/verification|integrity check/)
  })

  it('a cut first answer that had no ETag is not resumed (no version to pin it to): it restarts from zero while nothing was sent', async () => {
    const w = await contractWorld({ CDN_READ_RETRIES: '2' })
    const { plain, big } = seedChunked(w, 'm.bin', 6 * CB, CB)
    expect((await w.login()).status).toBe(200)
    const disk = slowDisk(w.env.cache)
    const whole = w.cdn.objects.get('models/m.bin.big')!
    const cutAt = CB / 2
    server.use(firstPlainGet('models/m.bin.big', () => {
      const stream = new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(big.subarray(0, cutAt)))
          void disk.writtenAtLeast(cutAt).then(() => c.error(new Error('connection reset')))
        },
      })
      return new HttpResponse(stream, { status: 200, headers: { ...whole.meta } })
    }))
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(200)
    const { got, cut: wasCut } = await drain(r)
    expect(wasCut).toBe(false)
    expect(got.equals(plain)).toBe(true)
    // The second GET asked for the whole object again, not for a Range without If-Match.
    expect(w.cdn.calls.filter((c) => c.method === 'GET').map((c) => c.range)).toEqual([undefined])
  })
})
