// The blob format and key strings: crypto.md §7 vectors, openssl interop both ways, typed errors.
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { aesKey, blobLength, createEncryptStream, decryptBuffer, DecryptStream, encryptBuffer } from '../../shared/crypto/blob'
import { BadPaddingError, BlobTooShortError, BlobTruncatedError } from '../../shared/crypto/errors'
import { apiDownloadKey, hardwareHash, resourceKey } from '../../shared/crypto/keys'
import { plainLengthFromTail } from '../../shared/crypto/last-block'
import { opensslB64Sha384, opensslDecrypt, opensslEncrypt } from '../helpers/openssl'
import { EMAIL, FINGERPRINT, KEY_FRAGMENT, PASSWORD, SALTS } from '../helpers/vectors'

const HW = 'CbOK59GWFPaC/f/PIZR1+oFMxvZaltv6EEr3snHQKmaC29RRIO70dkxx3KPXYc1C'
const API = 'iOlZVoJcpQUCXCDgXuiruxna3m0q+rw6dzamXZHE0NTcXw5upnPm4KCD+8z9zyPt'
const RES = 'sr97oMlTL+DfFNKJjCqaanmGYGYt/1cc65KzAqDfVBvaxkzoU64naCGuN56CoP5l'
const FOX_BLOB = '000102030405060708090a0b0c0d0e0f04e97c7c6a9759b73665bfa27f489a3c162ff1b4b8a46736775ce1e7f02ca9bb087e56b8ff53c51bcd85eeded9f04405'

/** Runs `input` through a transform in `chunk`-byte pieces and collects the output. */
async function through(t: NodeJS.ReadWriteStream, input: Buffer, chunk = 7): Promise<Buffer> {
  const parts: Buffer[] = []
  const pieces = function* () { for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk) }
  await pipeline(Readable.from(pieces()), t, new Writable({ write(c, _e, done) { parts.push(c); done() } }))
  return Buffer.concat(parts)
}

describe('crypto.md §7 vectors', () => {
  it('derives the three key strings', () => {
    expect(hardwareHash(FINGERPRINT, SALTS.HARDWARE_SALT)).toBe(HW)
    expect(apiDownloadKey(EMAIL, PASSWORD, HW, SALTS.API_KEY_SALT)).toBe(API)
    expect(resourceKey(SALTS.RESOURCE_KEY_SALT)).toBe(RES)
  })

  it('agrees with openssl dgst on the key strings', () => {
    expect(opensslB64Sha384('Azaion_' + FINGERPRINT + SALTS.HARDWARE_SALT)).toBe(HW)
    expect(opensslB64Sha384(SALTS.RESOURCE_KEY_SALT)).toBe(RES)
  })

  it('derives the AES keys', () => {
    expect(aesKey(API).toString('hex')).toBe('b2b4abf463edf3be64cc465d844086b4eab72c65d327a1cba5dfbee976bd26c4')
    expect(aesKey(RES).toString('hex')).toBe('c80b8a21f696ac367ef2bcf42fed2a47faecc51c827721701ef47606885537d4')
    expect(aesKey(KEY_FRAGMENT).toString('hex')).toBe('7764125e025f7b886dbd90f2d0de1ed8445f8ec6cc35d41d40fba3d437d1ab57')
  })

  it('makes the fox blob byte for byte, streaming and in memory', async () => {
    const iv = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
    const fox = Buffer.from('The quick brown fox jumps over the lazy dog')
    expect(encryptBuffer(aesKey(RES), fox, iv).toString('hex')).toBe(FOX_BLOB)
    expect((await through(createEncryptStream(aesKey(RES), iv), fox)).toString('hex')).toBe(FOX_BLOB)
    expect(await through(new DecryptStream(aesKey(RES)), Buffer.from(FOX_BLOB, 'hex'), 5)).toEqual(fox)
    expect(blobLength(fox.length)).toBe(64)
  })

  it('gives the plaintext length from the last two blocks alone', () => {
    const blob = Buffer.from(FOX_BLOB, 'hex')
    expect(plainLengthFromTail(aesKey(RES), blob.subarray(-32), blob.length)).toBe(43)
  })
})

const SIZES = [0, 1, 15, 16, 17, 4096, 1024 * 1024 + 3]

describe('interop with the openssl command line', () => {
  const key = aesKey(RES)
  const keyHex = key.toString('hex')

  it.each(SIZES)('decrypts what openssl enc made (%i bytes)', async (size) => {
    const plain = randomBytes(size)
    const blob = opensslEncrypt(keyHex, randomBytes(16).toString('hex'), plain)
    expect(blob.length).toBe(blobLength(size))
    expect((await through(new DecryptStream(key), blob, 65_536)).equals(plain)).toBe(true)
    expect(decryptBuffer(key, blob).equals(plain)).toBe(true)
    expect(plainLengthFromTail(key, blob.subarray(-32), blob.length)).toBe(size)
  })

  it.each(SIZES)('makes what openssl enc -d decrypts (%i bytes)', async (size) => {
    const plain = randomBytes(size)
    const blob = await through(createEncryptStream(key), plain, 100_000)
    expect(blob.length).toBe(blobLength(size))
    expect(opensslDecrypt(keyHex, blob).equals(plain)).toBe(true)
  })
})

describe('typed errors, never silently wrong bytes', () => {
  const key = aesKey(RES)
  const blob = encryptBuffer(key, Buffer.from('a resource of some length, more than one block'))

  const decryptAll = (k: Buffer, b: Buffer) => through(new DecryptStream(k), b, 9)

  it('a wrong key fails the padding check (streaming, in memory and from the tail)', async () => {
    // A wrong key yields valid padding with probability ~1/256; these keys are fixed so the test is deterministic.
    const wrong = aesKey('not-the-resource-key')
    await expect(decryptAll(wrong, blob)).rejects.toBeInstanceOf(BadPaddingError)
    expect(() => decryptBuffer(wrong, blob)).toThrow(BadPaddingError)
    expect(() => plainLengthFromTail(wrong, blob.subarray(-32), blob.length)).toThrow(BadPaddingError)
  })

  it('a flipped last byte fails the padding check', async () => {
    const bad = Buffer.from(blob)
    bad[bad.length - 1] ^= 0x01
    await expect(decryptAll(key, bad)).rejects.toBeInstanceOf(BadPaddingError)
    expect(() => plainLengthFromTail(key, bad.subarray(-32), bad.length)).toThrow(BadPaddingError)
  })

  it('a truncated blob is reported as truncated', async () => {
    await expect(decryptAll(key, blob.subarray(0, blob.length - 5))).rejects.toBeInstanceOf(BlobTruncatedError)
    await expect(decryptAll(key, blob.subarray(0, 16))).rejects.toBeInstanceOf(BlobTruncatedError)
    expect(() => decryptBuffer(key, blob.subarray(0, blob.length - 1))).toThrow(BlobTruncatedError)
  })

  it('a 15-byte blob is shorter than one block', async () => {
    await expect(decryptAll(key, blob.subarray(0, 15))).rejects.toBeInstanceOf(BlobTooShortError)
    expect(() => decryptBuffer(key, blob.subarray(0, 15))).toThrow(BlobTooShortError)
    expect(() => plainLengthFromTail(key, Buffer.alloc(32), 15)).toThrow(BlobTooShortError)
  })
})
