// Node Readable → web ReadableStream, pull-based so memory follows the reader (no eager buffering).
import type { Readable } from 'node:stream'

/** Wraps `readable` as a web stream that reads one chunk per pull and destroys it on cancel. */
export function toWebStream(readable: Readable): ReadableStream<Uint8Array> {
  const it = readable[Symbol.asyncIterator]()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await it.next()
        if (done) controller.close()
        else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
      } catch (e) {
        controller.error(e)
      }
    },
    async cancel() {
      readable.destroy()
      await it.return?.().catch(() => {})
    },
  }, { highWaterMark: 0 })
}
