// Bench worker: stream-decrypt a ciphertext file (the IV given apart, as openssl takes it) into a null sink; prints {ms, maxRssKiB}.
import { createReadStream } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { DecryptStream } from '../../shared/crypto/blob'

const [file, keyHex, ivHex] = process.argv.slice(2)
const t0 = performance.now()
let bytes = 0
const decrypt = new DecryptStream(Buffer.from(keyHex, 'hex'))
decrypt.write(Buffer.from(ivHex, 'hex')) // the blob's first 16 bytes
await pipeline(
  createReadStream(file, { highWaterMark: 1 << 20 }),
  decrypt,
  new Writable({ highWaterMark: 1 << 20, write(c, _e, done) { bytes += c.length; done() } }),
)
console.log(JSON.stringify({ ms: performance.now() - t0, bytes, maxRssKiB: process.resourceUsage().maxRSS }))
