// The chunk hashes of crypto.md §5c: the manifest's schema and encoding, the upload's split, the load's verifier.
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { CHUNK_BYTES, ManifestSchema, encodeManifest } from '../../shared/crypto/manifest'
import { ChunkMismatchError, createChunkVerifier } from '../../functions/load/chunk-verifier'
import { SplitStream } from '../../functions/upload/split'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const h = 'a'.repeat(64)
const base = { v: 1 as const, bytes: 100, blobBytes: 128, smallBytes: 38, sha256Big: h, sha256Small: h, sha256Plain: h }

describe('manifest chunk fields', () => {
  it('accepts a manifest without chunks and one whose chunk count fits blobBytes - smallBytes', () => {
    expect(v.safeParse(ManifestSchema, base).success).toBe(true)
    expect(v.safeParse(ManifestSchema, { ...base, chunkBytes: 64, chunks: [h, h] }).success).toBe(true)
    expect(v.safeParse(ManifestSchema, { ...base, chunkBytes: 90, chunks: [h] }).success).toBe(true)
  })

  it('refuses one field without the other, a wrong count, and a zero chunk size', () => {
    expect(v.safeParse(ManifestSchema, { ...base, chunkBytes: 64 }).success).toBe(false)
    expect(v.safeParse(ManifestSchema, { ...base, chunks: [h, h] }).success).toBe(false)
    expect(v.safeParse(ManifestSchema, { ...base, chunkBytes: 64, chunks: [h] }).success).toBe(false)
    expect(v.safeParse(ManifestSchema, { ...base, chunkBytes: 64, chunks: [h, h, h] }).success).toBe(false)
    expect(v.safeParse(ManifestSchema, { ...base, chunkBytes: 0, chunks: [] }).success).toBe(false)
    expect(v.safeParse(ManifestSchema, { ...base, chunkBytes: 64, chunks: [h, 'zz'] }).success).toBe(false)
  })

  it('encodes the spec keys in order, the chunk fields last and only when present', () => {
    expect(Object.keys(JSON.parse(encodeManifest(base).toString()))).toEqual(['v', 'bytes', 'blobBytes', 'smallBytes', 'sha256Big', 'sha256Small', 'sha256Plain'])
    const m = JSON.parse(encodeManifest({ ...base, chunkBytes: 64, chunks: [h, h] }).toString())
    expect(m).toEqual({ ...base, chunkBytes: 64, chunks: [h, h] })
    expect(Object.keys(m).slice(-2)).toEqual(['chunkBytes', 'chunks'])
  })
})

describe('SplitStream chunk hashes', () => {
  it('hashes the big part in CHUNK_BYTES slices, the last one short', async () => {
    const blob = randomBytes(2 * CHUNK_BYTES + 3072 + 4096)
    const split = new SplitStream()
    const out: Buffer[] = []
    // Odd-sized writes so slices straddle the writes.
    const pieces = Array.from({ length: Math.ceil(blob.length / 77_777) }, (_, i) => blob.subarray(i * 77_777, (i + 1) * 77_777))
    await pipeline(Readable.from(pieces), split, async (src) => { for await (const c of src) out.push(c as Buffer) })
    const r = split.result()
    const big = blob.subarray(3072)
    expect(Buffer.concat(out).equals(big)).toBe(true)
    expect(r.chunkBytes).toBe(CHUNK_BYTES)
    expect(r.chunks).toEqual([sha(big.subarray(0, CHUNK_BYTES)), sha(big.subarray(CHUNK_BYTES, 2 * CHUNK_BYTES)), sha(big.subarray(2 * CHUNK_BYTES))])
  })
})

describe('chunk verifier', () => {
  const big = randomBytes(1000)
  const chunks = [sha(big.subarray(0, 300)), sha(big.subarray(300, 600)), sha(big.subarray(600, 900)), sha(big.subarray(900))]

  it('reports each chunk once its last byte arrives, across any split of the input', () => {
    const ver = createChunkVerifier(chunks, 300, 1000)
    expect(ver.push(big.subarray(0, 299))).toEqual([])
    expect(ver.push(big.subarray(299, 550))).toEqual([{ index: 0, start: 0, bytes: 300 }])
    expect(ver.push(big.subarray(550, 1000))).toEqual([{ index: 1, start: 300, bytes: 300 }, { index: 2, start: 600, bytes: 300 }, { index: 3, start: 900, bytes: 100 }])
    expect(ver.received).toBe(1000)
  })

  it('throws on the first chunk that does not match, before reporting it', () => {
    const bad = Buffer.from(big)
    bad[450] ^= 1
    const ver = createChunkVerifier(chunks, 300, 1000)
    expect(ver.push(bad.subarray(0, 400))).toHaveLength(1)
    expect(() => ver.push(bad.subarray(400, 700))).toThrow(ChunkMismatchError)
  })

  it('refuses bytes past the manifest length', () => {
    const ver = createChunkVerifier(chunks, 300, 1000)
    ver.push(big)
    expect(() => ver.push(Buffer.alloc(1))).toThrow(/longer than the manifest/)
  })
})
