// Stores a resource in a test stack the way an upload does: the big part on the real S3 (moto) with
// its x-amz-meta hashes, the small part and the manifest (chunk hashes when asked) on the origin.
import { createHash } from 'node:crypto'
import { expect } from 'vitest'
import { smallSizeOf } from '../../functions/upload/split'
import { encryptBuffer } from '../../shared/crypto/blob'
import { encodeManifest } from '../../shared/crypto/manifest'
import { RESOURCE_AES, type Stack } from './stack'

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

/** Seeds `models/<name>` with `plain`; `chunkBytes` adds chunk hashes to the manifest (crypto.md §5c), `manifest: false` leaves none (an older upload). */
export async function seedResource(s: Stack, name: string, plain: Buffer, { chunkBytes, manifest = true }: { chunkBytes?: number; manifest?: boolean } = {}): Promise<void> {
  const blob = encryptBuffer(RESOURCE_AES, plain)
  const k = smallSizeOf(blob.length)
  const small = blob.subarray(0, k)
  const big = blob.subarray(k)
  const r = await s.s3.fetch(`${s.moto.url}/models/${name}.big`, {
    method: 'PUT', body: new Uint8Array(big),
    headers: { 'x-amz-content-sha256': sha(big), 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': sha(small) },
  })
  expect(r.status).toBe(200)
  s.origin.files.set(`models/${name}.small`, Buffer.from(small))
  if (!manifest) {
    s.origin.files.delete(`models/${name}.manifest`)
    return
  }
  const chunks: string[] = []
  if (chunkBytes) for (let i = 0; i < big.length; i += chunkBytes) chunks.push(sha(big.subarray(i, i + chunkBytes)))
  s.origin.files.set(`models/${name}.manifest`, encodeManifest({ v: 1, bytes: plain.length, blobBytes: blob.length, smallBytes: k,
    sha256Big: sha(big), sha256Small: sha(small), sha256Plain: sha(plain), ...(chunkBytes ? { chunkBytes, chunks } : {}) }))
}
