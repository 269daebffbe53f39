// crypto.md byte formats against the openssl command line at their edges: every §7 vector reproduced
// by openssl, the §4 split rule around 10240 blob bytes, and the §5c chunk hashes around a chunk boundary.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { SplitStream, smallSizeOf } from '../../functions/upload/split'
import { aesKey, blobLength, createEncryptStream, DecryptStream } from '../../shared/crypto/blob'
import { apiDownloadKey, hardwareHash, resourceKey } from '../../shared/crypto/keys'
import { plainLengthFromTail } from '../../shared/crypto/last-block'
import { CHUNK_BYTES, ManifestSchema, encodeManifest } from '../../shared/crypto/manifest'
import { opensslB64Sha384, opensslDecrypt, opensslEncrypt } from '../helpers/openssl'
import { EMAIL, FINGERPRINT, KEY_FRAGMENT, PASSWORD, SALTS } from '../helpers/vectors'
import * as v from 'valibot'

const RES = resourceKey(SALTS.RESOURCE_KEY_SALT)
const KEY = aesKey(RES)
const KEY_HEX = KEY.toString('hex')
const FOX = Buffer.from('The quick brown fox jumps over the lazy dog')
const FOX_IV = '000102030405060708090a0b0c0d0e0f'
const FOX_BLOB = '000102030405060708090a0b0c0d0e0f04e97c7c6a9759b73665bfa27f489a3c162ff1b4b8a46736775ce1e7f02ca9bb087e56b8ff53c51bcd85eeded9f04405'

/** `openssl dgst -sha256` of some bytes, as hex. */
const opensslSha256 = (b: Buffer | string) =>
  execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: b, maxBuffer: 1 << 20 }).toString('hex')

/** Pipes `input` through `t` in `piece`-byte writes and collects what comes out. */
async function through(t: NodeJS.ReadWriteStream, input: Buffer, piece: number): Promise<Buffer> {
  const out: Buffer[] = []
  const pieces = function* () { for (let i = 0; i < input.length; i += piece) yield input.subarray(i, i + piece) }
  await pipeline(Readable.from(pieces()), t, new Writable({ write(c, _e, done) { out.push(c); done() } }))
  return Buffer.concat(out)
}

/** Plaintext lengths whose blob is `n` bytes: the shortest and the longest (PKCS#7 always pads). */
const plainLengthsFor = (n: number) => [n - 32, n - 17]

describe('crypto.md §7: every vector, reproduced by the openssl command line', () => {
  it('the three key strings (openssl dgst -sha384 | base64) are the loader\'s', () => {
    const hw = hardwareHash(FINGERPRINT, SALTS.HARDWARE_SALT)
    expect(opensslB64Sha384('Azaion_' + FINGERPRINT + SALTS.HARDWARE_SALT)).toBe(hw)
    expect(opensslB64Sha384(EMAIL + PASSWORD + hw + SALTS.API_KEY_SALT)).toBe(apiDownloadKey(EMAIL, PASSWORD, hw, SALTS.API_KEY_SALT))
    expect(opensslB64Sha384(SALTS.RESOURCE_KEY_SALT)).toBe(RES)
  })

  it('the three AES keys (openssl dgst -sha256 of the key string) are the loader\'s and the spec\'s', () => {
    const api = apiDownloadKey(EMAIL, PASSWORD, hardwareHash(FINGERPRINT, SALTS.HARDWARE_SALT), SALTS.API_KEY_SALT)
    for (const [k, hex] of [[api, 'b2b4abf463edf3be64cc465d844086b4eab72c65d327a1cba5dfbee976bd26c4'],
      [RES, 'c80b8a21f696ac367ef2bcf42fed2a47faecc51c827721701ef47606885537d4'],
      [KEY_FRAGMENT, '7764125e025f7b886dbd90f2d0de1ed8445f8ec6cc35d41d40fba3d437d1ab57']]) {
      expect(opensslSha256(k)).toBe(hex)
      expect(aesKey(k).toString('hex')).toBe(hex)
    }
  })

  it('the fox blob: openssl enc with the spec\'s IV makes the spec\'s 64 bytes, and so does the loader', async () => {
    expect(opensslEncrypt(KEY_HEX, FOX_IV, FOX).toString('hex')).toBe(FOX_BLOB)
    expect((await through(createEncryptStream(KEY, Buffer.from(FOX_IV, 'hex')), FOX, 5)).toString('hex')).toBe(FOX_BLOB)
  })

  it('the fox blob\'s split: smallSize 19, the small part is its first 19 bytes and the rest is the big part', async () => {
    const blob = Buffer.from(FOX_BLOB, 'hex')
    expect(smallSizeOf(64)).toBe(19)
    const split = new SplitStream()
    const big = await through(split, blob, 3)
    const r = split.result()
    expect(r.small.toString('hex')).toBe(FOX_BLOB.slice(0, 38))
    expect(big.toString('hex')).toBe(FOX_BLOB.slice(38))
    expect([r.smallSha256, r.bigSha256]).toEqual([opensslSha256(blob.subarray(0, 19)), opensslSha256(blob.subarray(19))])
  })
})

// The split rule's edge (floor(0.3 n) reaches 3072 at n = 10240) and the chunk boundary of the big
// part (bigBytes = CHUNK_BYTES − 16, = CHUNK_BYTES, + 16: a big part is always a multiple of 16 long).
const EDGE_BLOBS = [32, 48, 10224, 10240, 10256, CHUNK_BYTES + 3072 - 16, CHUNK_BYTES + 3072, CHUNK_BYTES + 3072 + 16]
const PLAIN_SIZES = [...new Set([0, 1, 15, 16, 17, 10239, 10240, 10241, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1,
  ...EDGE_BLOBS.flatMap(plainLengthsFor)])].sort((a, b) => a - b)

describe('the split rule and the chunk hashes at their edges, against openssl', () => {
  it('smallSize = min(3072, floor(0.3 n)) at the edge, in exact arithmetic', () => {
    expect([10224, 10240, 10256].map(smallSizeOf)).toEqual([3067, 3072, 3072])
    for (let n = 32; n <= 20_000; n += 16) expect(smallSizeOf(n)).toBe(Math.min(3072, Math.floor((3 * n) / 10)))
  })

  it.each(PLAIN_SIZES)('%i bytes: an openssl blob splits, hashes and chunks as crypto.md says, whatever the write sizes', async (size) => {
    const plain = randomBytes(size)
    const blob = opensslEncrypt(KEY_HEX, randomBytes(16).toString('hex'), plain)
    const n = blob.length
    expect(n).toBe(blobLength(size))
    const s = Math.min(3072, Math.floor((3 * n) / 10))
    const bigRef = blob.subarray(s)
    const chunkRef: string[] = []
    for (let i = 0; i < bigRef.length; i += CHUNK_BYTES) chunkRef.push(opensslSha256(bigRef.subarray(i, i + CHUNK_BYTES)))
    for (const piece of [1, 4097, 65_536, 1 << 20]) {
      if (piece === 1 && n > 20_000) continue
      const split = new SplitStream()
      const big = await through(split, blob, piece)
      const r = split.result()
      expect(r.small.equals(blob.subarray(0, s))).toBe(true)
      expect(big.equals(bigRef)).toBe(true)
      expect({ blobBytes: r.blobBytes, bigBytes: r.bigBytes, smallSha256: r.smallSha256, bigSha256: r.bigSha256, chunks: r.chunks })
        .toEqual({ blobBytes: n, bigBytes: n - s, smallSha256: opensslSha256(blob.subarray(0, s)), bigSha256: opensslSha256(bigRef), chunks: chunkRef })
    }
    // The manifest the upload writes from it validates, chunk count included.
    const m = { v: 1 as const, bytes: size, blobBytes: n, smallBytes: s, sha256Big: opensslSha256(bigRef), sha256Small: opensslSha256(blob.subarray(0, s)),
      sha256Plain: opensslSha256(plain), chunkBytes: CHUNK_BYTES, chunks: chunkRef }
    expect(v.safeParse(ManifestSchema, JSON.parse(encodeManifest(m).toString())).success).toBe(true)
    // The load side: the last block of the joined parts gives the exact length; the stream decrypts it.
    expect(plainLengthFromTail(KEY, blob.subarray(-32), n)).toBe(size)
    expect((await through(new DecryptStream(KEY), blob, 4099)).equals(plain)).toBe(true)
  })

  it.each(PLAIN_SIZES.filter((n) => n < 20_000))('%i bytes: what the loader encrypts, openssl enc -d decrypts', async (size) => {
    const plain = randomBytes(size)
    const blob = await through(createEncryptStream(KEY), plain, 7)
    expect(blob.length).toBe(blobLength(size))
    expect(opensslDecrypt(KEY_HEX, blob).equals(plain)).toBe(true)
  })
})
