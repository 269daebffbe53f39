// SHA-256 of a file computed on a worker thread, so hashing a multi-GiB part does not hold the
// event loop (a cold load checks its big part's whole hash while other callers are being served).
import { Worker } from 'node:worker_threads'

// Plain CommonJS run by the worker (`eval`), so the bundled runtime needs no separate worker file.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const { createReadStream } = require('node:fs')
const hash = createHash('sha256')
let result = null
// Answered once the descriptor is closed: the main thread terminates the worker on the answer, and a
// descriptor still open then would stay open in the process for good.
createReadStream(workerData.path, { highWaterMark: 1 << 20 })
  .on('data', (c) => hash.update(c))
  .on('error', (e) => { result = { error: e.message, code: e.code } })
  .on('end', () => { result = { sha256: hash.digest('hex') } })
  .on('close', () => parentPort.postMessage(result || { error: 'the file stream closed early' }))
`

/**
 * Resolves with the SHA-256 (hex) of the file at `path`. With `timeoutMs`, a hash not done by then
 * (a disk that hangs) is given up: the worker is terminated and this rejects with code ETIMEDOUT
 * and `exited`, a promise of the worker's real end — a read stuck in the thread pool keeps its
 * thread until the disk answers, whatever `terminate()` says.
 */
export function hashFile(path: string, timeoutMs?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(SOURCE, { eval: true, workerData: { path } })
    const exited = new Promise<void>((ok) => worker.once('exit', () => ok()))
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      reject(Object.assign(new Error(`hashing ${path} took more than ${timeoutMs} ms`), { code: 'ETIMEDOUT', exited }))
      void worker.terminate()
    }, timeoutMs)
    worker.once('message', (m: { sha256?: string; error?: string; code?: string }) => {
      clearTimeout(timer)
      void worker.terminate()
      if (m.sha256) resolve(m.sha256)
      else reject(Object.assign(new Error(m.error ?? 'hashing failed'), { code: m.code }))
    })
    worker.once('error', (e) => { clearTimeout(timer); reject(e) })
    worker.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the hashing worker exited (${code})`)) })
  })
}
