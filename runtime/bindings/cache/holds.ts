// A held cached big part: an open descriptor shared by every load reading it, read by position
// only, so that no reader can close it for the others; the last release closes it.
import type { FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import type { CacheRecord, HeldPart } from '../../../shared/contract/cache'
import type { Logger } from '../../../shared/contract/logger'
import { READ_CHUNK } from './files'

/**
 * A stream of `fh` from `start` by positional reads. It never closes the descriptor, which many
 * readers may share (a Node fs.ReadStream over a FileHandle closes it when destroyed, autoClose or not).
 */
export function positionalStream(fh: FileHandle, start: number, onError: (e: unknown) => void): Readable {
  let position = start
  const s = new Readable({
    highWaterMark: READ_CHUNK,
    read() {
      const buf = Buffer.allocUnsafe(READ_CHUNK)
      fh.read(buf, 0, READ_CHUNK, position).then(({ bytesRead }) => {
        if (s.destroyed) return
        if (bytesRead === 0) return void s.push(null)
        position += bytesRead
        s.push(buf.subarray(0, bytesRead))
      }, (e) => s.destroy(e))
    },
  })
  s.on('error', onError)
  return s
}

/**
 * A hold over `fh` (the file at `path`); `onLastRelease` runs after the descriptor is closed by the
 * last holder; `discard` removes the part from the cache (see HeldPart.discard).
 */
export function heldPart(path: string, fh: FileHandle, record: CacheRecord, bytes: number, onLastRelease: () => void,
  discard: (fh: FileHandle) => Promise<void>, log?: Logger): HeldPart {
  let holds = 1
  const drop = () => {
    if (--holds > 0) return
    fh.close().catch(() => {})
    onLastRelease()
  }
  const view = (): HeldPart => {
    let released = false
    return {
      record,
      bytes,
      stream(start = 0) {
        return positionalStream(fh, start, (e) => log?.debug({ path, err: String(e) }, 'cached big part read failed'))
      },
      async readAt(position, length) {
        // Unzeroed: only the bytes read are handed out.
        const buf = Buffer.allocUnsafe(length)
        const { bytesRead } = await fh.read(buf, 0, length, position)
        return buf.subarray(0, bytesRead)
      },
      retain() {
        if (released) throw new Error('retain() of a released cache hold')
        holds++
        return view()
      },
      discard: () => discard(fh),
      release() {
        if (released) return
        released = true
        drop()
      },
    }
  }
  return view()
}
