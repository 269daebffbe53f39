// Bench worker: an HTTP server answering every GET with `bytes` bytes written 1 MiB at a time from
// memory — no file, no framework; with `decrypt`, each 1 MiB is AES-256-CBC-decrypted first on the
// main thread. What the socket alone (and the socket plus the cipher) allow a Node server here.
import { createServer } from 'node:http'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { createGcPacer } from '../../shared/crypto/gc-pacer'

const [bytesArg, mode] = process.argv.slice(2)
const total = Number(bytesArg)
const CHUNK = 1 << 20
const key = randomBytes(32)
const iv = randomBytes(16)
const plain = randomBytes(CHUNK)
const enc = createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false)
const cipherChunk = enc.update(plain)
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-length': String(total), 'content-type': 'application/octet-stream' })
  const dec = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false)
  const pace = createGcPacer() // as the loader's streams do
  let sent = 0
  const pump = () => {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent)
      const out = mode === 'decrypt' ? dec.update(cipherChunk.subarray(0, n)) : plain.subarray(0, n)
      sent += n
      if (mode === 'decrypt') pace(n)
      if (!res.write(out)) return void res.once('drain', pump)
    }
    res.end()
  }
  pump()
})
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port })))
