// A CDN body into a partial file with backpressure, flushing what arrived when the source fails
// (the next attempt resumes from it): the download-then-send path's receive loop.
import type { Readable, Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { markLocal } from '../../shared/http/local-storage-error'

/**
 * Writes the CDN body `res` into the partial file `out`, `onChunk` seeing each chunk first. When the
 * SOURCE fails (a cut or stalled body) the file is still ended gracefully, every byte received
 * flushed to disk, before this rejects with the source's error: the next attempt resumes from them
 * (re-hashing the file). A failing file (a disk error) rejects with its own error.
 */
export async function receive(res: Readable, out: Writable, onChunk: (c: Buffer) => void): Promise<void> {
  let fileError: unknown
  out.on('error', (e) => { fileError ??= e })
  let sourceError: unknown
  try {
    for await (const c of res) {
      if (fileError) break
      onChunk(c as Buffer)
      if (!out.write(c)) {
        await new Promise<void>((resolve) => {
          const go = () => { out.off('drain', go); out.off('close', go); resolve() }
          out.on('drain', go)
          out.on('close', go)
        })
      }
    }
  } catch (e) {
    sourceError = e
  }
  if (fileError) {
    res.destroy()
    throw markLocal(fileError)
  }
  out.end()
  await finished(out)
  if (sourceError) throw sourceError
}

