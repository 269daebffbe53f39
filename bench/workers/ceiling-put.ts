// Bench worker: PUTs a file with node:http (with the given signed headers), each 1 MiB encrypted
// with AES-256-CBC and hashed three times with SHA-256 on the way (the plaintext, the ciphertext
// and its chunks: the manifest's hashes), nothing else (no client body to receive, no cache file):
// what a one-pass upload does at the least. Prints {ms, status, maxRssKiB}.
import { createReadStream } from 'node:fs'
import { request } from 'node:http'
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { createGcPacer } from '../../shared/crypto/gc-pacer'

const [url, file, headersArg] = process.argv.slice(2)
const cipher = createCipheriv('aes-256-cbc', randomBytes(32), randomBytes(16))
const plainHash = createHash('sha256')
const bigHash = createHash('sha256')
const chunkHash = createHash('sha256')
const pace = createGcPacer()
const t0 = performance.now()
const status = await new Promise<number>((ok, ko) => {
  const req = request(url, { method: 'PUT', headers: JSON.parse(headersArg) as Record<string, string> }, (res) => {
    res.resume()
    res.on('end', () => ok(res.statusCode ?? 0))
  })
  req.on('error', ko)
  const send = (b: Buffer) => {
    bigHash.update(b)
    chunkHash.update(b)
    return req.write(b)
  }
  const rs = createReadStream(file, { highWaterMark: 1 << 20 })
  rs.on('data', (chunk) => {
    const c = chunk as Buffer
    pace(c.length)
    plainHash.update(c)
    if (!send(cipher.update(c))) {
      rs.pause()
      req.once('drain', () => rs.resume())
    }
  })
  rs.on('end', () => {
    send(cipher.final())
    for (const h of [plainHash, bigHash, chunkHash]) h.digest()
    req.end()
  })
  rs.on('error', ko)
})
if (status !== 200) throw new Error(`PUT ${url}: ${status}`)
console.log(JSON.stringify({ ms: performance.now() - t0, status, maxRssKiB: process.resourceUsage().maxRSS }))
