// Ceilings: what this machine allows any Node server or client, measured in the same run as the
// flows, so a missed target can be told apart from a slow loader. Each row is a bare Node process
// (no loader) beside the reference the flow is measured against: openssl for warm loads, curl
// against the same S3 server (moto, SigV4 checked) for cold loads and uploads.
import { join } from 'node:path'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { AwsClient } from 'aws4fetch'
import { aesKey } from '../shared/crypto/blob'
import { startMoto, type Keys } from '../test/helpers/moto'
import { MALLOC_TUNABLES } from '../runtime/memory-settings'
import { alternate, bundledWorker, curlSigV4, curlTimed, OUT, opensslDecrypt, opensslEncryptFile, randomFile, runWorker, type Row } from './lib'
import { row } from './flows'

/** Starts the ceiling server (`plain` or `decrypt`) and returns its URL and a stop. */
async function server(bytes: number, mode: 'plain' | 'decrypt' | 'file', file = ''): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, [await bundledWorker('ceiling-server.ts'), String(bytes), mode, file],
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
    const what = {
      plain: 'bare Node HTTP server → curl, bytes from memory (no file, no cipher): the most a warm /load could reach',
      decrypt: 'bare Node HTTP server → curl, each 1 MiB decrypted on the main thread (no file): a single-threaded warm /load at best',
      file: 'bare Node HTTP server → curl, the same ciphertext file read 1 MiB at a time (one read ahead) and decrypted on the main thread: a warm /load with nothing else',
    }
    for (const mode of ['plain', 'decrypt', 'file'] as const) {
      const s = await server(size, mode, ct)
      try {
        const r = await alternate(runs, () => curlTimed([s.url]), openssl)
        rows.push(row('ceilings', what[mode], size, r.ours, { name: mode === 'file' ? 'openssl enc -d -in (the same file)' : 'openssl enc -d -in (same size)', ms: r.ref }, {}))
      } finally {
        s.stop()
      }
    }
    rows.push(...await s3Ceilings(size, plain, runs))
  } finally {
    rmSync(ct, { force: true })
  }
  return rows
}

/** SigV4 headers for one request to moto (signed here, sent by the worker). */
async function signed(keys: Keys, url: string, method: string, headers: Record<string, string> = {}): Promise<string> {
  const req = await new AwsClient({ ...keys, service: 's3', region: 'us-east-1' }).sign(url, { method, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headers } })
  return JSON.stringify(Object.fromEntries(req.headers))
}

/** A bare node:http client against moto beside curl against moto: the cold-load and upload ceilings. */
async function s3Ceilings(size: number, plain: string, runs: number): Promise<Row[]> {
  const moto = await startMoto(['models'])
  try {
    const url = `${moto.url}/models/ceiling-${size}.bin`
    await curlTimed([...curlSigV4(moto.uploader), '-T', plain, url])
    const rows: Row[] = []
    const curlGet = () => curlTimed([...curlSigV4(moto.downloader), url])
    for (const hashes of [0, 2]) {
      const r = await alternate(runs, async () => runWorker('ceiling-client.ts', [url, String(hashes), await signed(moto.downloader, url, 'GET')]), curlGet)
      rows.push(row('ceilings', hashes === 0
        ? 'bare node:http client ← moto, SigV4 GET of the same object, receiving only (no hash, no file, no cipher): the most any Node process reaches for a cold /load here'
        : 'bare node:http client ← moto, the same GET hashing every byte twice (the chunk hashes and the whole part, crypto.md §5c), nothing else: the least a verified cold /load must do',
      size, r.ours, { name: 'curl --aws-sigv4 GET of the same object', ms: r.ref }, {}))
    }
    // The upload: the ciphertext's length (PKCS#7 pads 1–16 bytes), to one object rewritten each run.
    const putUrl = `${moto.url}/models/ceiling-put-${size}.bin`
    const length = String((Math.floor(size / 16) + 1) * 16)
    const p = await alternate(runs, async () => runWorker('ceiling-put.ts', [putUrl, plain, await signed(moto.uploader, putUrl, 'PUT', { 'content-length': length })]),
      () => curlTimed([...curlSigV4(moto.uploader), '-T', plain, putUrl]))
    rows.push(row('ceilings', 'bare node:http PUT → moto of the same file, encrypted (AES-256-CBC) and hashed three times on the way (the manifest\'s hashes), nothing else: the least a one-pass /upload must do',
      size, p.ours, { name: 'curl --aws-sigv4 -T (same size, same S3)', ms: p.ref }, {}))
    return rows
  } finally {
    moto.child.kill()
  }
}
