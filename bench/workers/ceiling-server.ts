// Bench worker: an HTTP server answering every GET with `bytes` bytes written 1 MiB at a time from
// memory — no file, no framework; with `decrypt`, each 1 MiB is AES-256-CBC-decrypted first on the
// main thread; with `file <path>`, each 1 MiB is read from the file (one read ahead, as a warm load
// reads its cached part) and decrypted. What the socket alone, plus the cipher, plus the file allow.
import { createServer } from 'node:http'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { statSync } from 'node:fs'
import { createGcPacer } from '../../shared/crypto/gc-pacer'

const [bytesArg, mode, file] = process.argv.slice(2)
const total = mode === 'file' ? statSync(file).size : Number(bytesArg)
const CHUNK = 1 << 20
const key = randomBytes(32)
const iv = randomBytes(16)
const plain = randomBytes(CHUNK)
const enc = createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false)
const cipherChunk = enc.update(plain)
/** The file, read 1 MiB at a time with one read ahead, decrypted, written with backpressure. */
async function fromFile(res: import('node:http').ServerResponse): Promise<void> {
  const fh: FileHandle = await open(file, 'r')
  const dec = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false)
  const pace = createGcPacer()
  const read = (at: number) => fh.read(Buffer.allocUnsafe(CHUNK), 0, Math.min(CHUNK, total - at), at).then(({ buffer, bytesRead }) => buffer.subarray(0, bytesRead))
  try {
    let ahead = read(0)
    for (let at = 0; at < total;) {
      const chunk = await ahead
      at += chunk.length
      if (at < total) ahead = read(at)
      pace(chunk.length)
      if (!res.write(dec.update(chunk))) await new Promise((ok) => res.once('drain', ok))
    }
    res.end()
  } finally {
    await fh.close()
  }
}

const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-length': String(total), 'content-type': 'application/octet-stream' })
  if (mode === 'file') return void fromFile(res).catch(() => res.destroy())
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
