// Crypto bench: our streaming decrypt vs `openssl enc -d` on the same blob, plus peak RSS.
import { join } from 'node:path'
import { aesKey } from '../shared/crypto/blob'
import { MiB, OUT, opensslDecryptMs, opensslEncryptFile, randomFile, runWorker, type Row } from './lib'

/** Decrypts blobs of each size with both; `sizes` in bytes. */
export async function benchCrypto(sizes: number[]): Promise<Row[]> {
  const keyHex = aesKey('bench-resource-key').toString('hex')
  const rows: Row[] = []
  for (const size of sizes) {
    const plain = await randomFile(`plain-${size}.bin`, size)
    const blob = join(OUT, `blob-${size}.enc`)
    opensslEncryptFile(keyHex, plain, blob)
    const ref = await opensslDecryptMs(keyHex, blob)
    const ours = await runWorker<{ ms: number; maxRssKiB: number }>('decrypt.ts', [blob, keyHex])
    rows.push({ area: 'crypto', what: 'stream decrypt → null sink', bytes: size, ms: ours.ms, refName: 'openssl enc -d', refMs: ref,
      peakRssMiB: ours.maxRssKiB / 1024, target: size >= 256 * MiB ? 'ratio ≥ 0.65, RSS ≤ 64 MiB' : undefined })
  }
  return rows
}
