// Ceilings: what this machine allows any Node server or client, measured in the same run as the
// flows, so a missed target can be told apart from a slow loader. Each row is a bare Node process
// (no loader) beside the reference the flow is measured against.
import { join } from 'node:path'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { aesKey } from '../shared/crypto/blob'
import { MALLOC_TUNABLES } from '../runtime/memory-settings'
import { alternate, bundledWorker, curlTimed, OUT, opensslDecrypt, opensslEncryptFile, randomFile, runWorker, type Row } from './lib'
import { row } from './flows'

/** Starts the ceiling server (`plain` or `decrypt`) and returns its URL and a stop. */
async function server(bytes: number, mode: 'plain' | 'decrypt'): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, [await bundledWorker('ceiling-server.ts'), String(bytes), mode],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES } })
  const [line] = await once(child.stdout!, 'data')
  const { port } = JSON.parse(String(line)) as { port: number }
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill() }
}

export async function benchCeilings(size: number, runs: number): Promise<Row[]> {
  const keyHex = aesKey('bench-ceiling-key').toString('hex')
  const plain = await randomFile(`plain-${size}.bin`, size)
  const ct = join(OUT, `ceiling-ct-${size}.bin`)
  const { ivHex } = opensslEncryptFile(keyHex, plain, ct)
  const openssl = () => opensslDecrypt(keyHex, ivHex, ct)
  const rows: Row[] = []
  try {
    for (const mode of ['plain', 'decrypt'] as const) {
      const s = await server(size, mode)
      try {
        const r = await alternate(runs, () => curlTimed([s.url]), openssl)
        rows.push(row('ceilings', mode === 'plain'
          ? 'bare Node HTTP server → curl, bytes from memory (no file, no cipher): the most a warm /load could reach'
          : 'bare Node HTTP server → curl, each 1 MiB decrypted on the main thread (no file): a single-threaded warm /load at best',
        size, r.ours, { name: 'openssl enc -d -in (same size)', ms: r.ref }, {}))
        if (mode === 'plain') {
          const c = await alternate(runs, () => runWorker('ceiling-client.ts', [s.url]), () => curlTimed([s.url]))
          rows.push(row('ceilings', 'bare node:http client ← the same server, hashing each chunk (SHA-256): one of the two hash passes a cold /load must make', size, c.ours,
            { name: 'curl GET of the same server', ms: c.ref }, {}))
        }
      } finally {
        s.stop()
      }
    }
  } finally {
    rmSync(ct, { force: true })
  }
  return rows
}
