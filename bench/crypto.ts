// Crypto bench: our streaming decrypt vs `openssl enc -d -in` on the same ciphertext file,
// alternating runs (median and best), plus peak RSS.
import { join } from 'node:path'
import { rmSync } from 'node:fs'
import { aesKey } from '../shared/crypto/blob'
import { alternate, MiB, OUT, opensslDecrypt, opensslEncryptFile, randomFile, runWorker, type Row } from './lib'
import { row } from './flows'

/** Decrypts the ciphertext of each size with both; `sizes` in bytes. */
export async function benchCrypto(sizes: number[], runs: number): Promise<Row[]> {
  const keyHex = aesKey('bench-resource-key').toString('hex')
  const rows: Row[] = []
  for (const size of sizes) {
    const plain = await randomFile(`plain-${size}.bin`, size)
    const ct = join(OUT, `ct-${size}.bin`)
    const { ivHex } = opensslEncryptFile(keyHex, plain, ct)
    let rss = 0
    const r = await alternate(runs, async () => {
      const w = await runWorker<{ ms: number; maxRssKiB: number }>('decrypt.ts', [ct, keyHex, ivHex])
      rss = Math.max(rss, w.maxRssKiB / 1024)
      return w
    }, () => opensslDecrypt(keyHex, ivHex, ct))
    rows.push(row('crypto', 'stream decrypt → null sink (a Node process)', size, r.ours, { name: 'openssl enc -d -in (same ciphertext)', ms: r.ref },
      { peakRssMiB: rss, target: size >= 256 * MiB ? 'ratio ≥ 0.65, RSS ≤ 64 MiB' : undefined, minRatio: size >= 256 * MiB ? 0.65 : undefined }))
    rmSync(ct, { force: true })
  }
  return rows
}
