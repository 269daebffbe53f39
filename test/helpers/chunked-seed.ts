// Seeds a contract world with a resource as a chunk-hashing uploader writes it (crypto.md §5c): the
// big part on the CDN mock, the small part and a manifest with chunk hashes at the Resource API mock.
import { createHash } from 'node:crypto'
import { smallSizeOf } from '../../functions/upload/split'
import { encryptBuffer } from '../../shared/crypto/blob'
import { encodeManifest } from '../../shared/crypto/manifest'
import type { contractWorld } from './contract'
import { RESOURCE_AES } from './stack'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Seeds `models/<name>` with a deterministic plaintext of `bytes` and chunk hashes of `chunkBytes`; returns its parts. */
export function seedChunked(w: Awaited<ReturnType<typeof contractWorld>>, name: string, bytes: number, chunkBytes: number) {
  const plain = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i++) plain[i] = (i * 7 + (i >> 8)) & 0xff
  const blob = encryptBuffer(RESOURCE_AES, plain, Buffer.alloc(16, 3))
  const n = smallSizeOf(blob.length)
  const small = Buffer.from(blob.subarray(0, n))
  const big = Buffer.from(blob.subarray(n))
  const chunks: string[] = []
  for (let i = 0; i < big.length; i += chunkBytes) chunks.push(sha(big.subarray(i, i + chunkBytes)))
  w.cdn.put(`models/${name}.big`, big, { 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': sha(small) })
  w.api.state.files.set(`models/${name}.small`, small)
  w.api.state.files.set(`models/${name}.manifest`, encodeManifest({ v: 1, bytes: plain.length, blobBytes: blob.length, smallBytes: n,
    sha256Big: sha(big), sha256Small: sha(small), sha256Plain: sha(plain), chunkBytes, chunks }))
  return { plain, small, big }
}
