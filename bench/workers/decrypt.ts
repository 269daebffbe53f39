// Bench worker: stream-decrypt a blob file into a null sink; prints {ms, maxRssKiB}.
import { createReadStream } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { DecryptStream } from '../../shared/crypto/blob'

const [file, keyHex] = process.argv.slice(2)
const t0 = performance.now()
let bytes = 0
await pipeline(
  createReadStream(file, { highWaterMark: 1 << 20 }),
  new DecryptStream(Buffer.from(keyHex, 'hex')),
  new Writable({ highWaterMark: 1 << 20, write(c, _e, done) { bytes += c.length; done() } }),
)
console.log(JSON.stringify({ ms: performance.now() - t0, bytes, maxRssKiB: process.resourceUsage().maxRSS }))
