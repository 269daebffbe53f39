// The openssl command line as the independent reference for the blob format.
import { execFileSync } from 'node:child_process'

/** `openssl enc -aes-256-cbc` with an explicit key and IV; returns IV || ciphertext like the blob format. */
export function opensslEncrypt(keyHex: string, ivHex: string, plain: Buffer): Buffer {
  const c = execFileSync('openssl', ['enc', '-aes-256-cbc', '-K', keyHex, '-iv', ivHex], { input: plain, maxBuffer: 1 << 28 })
  return Buffer.concat([Buffer.from(ivHex, 'hex'), c])
}

/** `openssl enc -d` of a blob (IV taken from its first 16 bytes). */
export function opensslDecrypt(keyHex: string, blob: Buffer): Buffer {
  const iv = blob.subarray(0, 16).toString('hex')
  return execFileSync('openssl', ['enc', '-d', '-aes-256-cbc', '-K', keyHex, '-iv', iv], { input: blob.subarray(16), maxBuffer: 1 << 28 })
}

/** `openssl dgst -sha384 -binary | base64`, the way crypto.md reproduces key strings. */
export function opensslB64Sha384(text: string): string {
  const bin = execFileSync('openssl', ['dgst', '-sha384', '-binary'], { input: Buffer.from(text, 'utf8') })
  return bin.toString('base64')
}
