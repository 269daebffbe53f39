// The upload body with an idle bound: a client that sends nothing for CLIENT_STALL_TIMEOUT_MS while
// the loader waits for its next byte fails the body with a 408 (its transfer slot and temp file go).
import { HttpError } from '../../shared/contract/http-error'

/** 408 for a client that stopped sending its upload body. */
export const stalledBody = (ms: number) => new HttpError(408, `the upload body stalled: the client sent no byte for ${Math.round(ms)} ms (CLIENT_STALL_TIMEOUT_MS)`, {
  type: 'upload-stalled', headers: { connection: 'close' },
})

/** Chunks of the body already received are joined up to this size (one copy, far fewer stream hops). */
const COALESCE_BYTES = 1 << 20
const NOT_YET = Symbol('not yet')
/** Resolves after the event loop's next turn (its I/O phase has run): what has arrived by then is taken. */
const nextTurn = () => new Promise<typeof NOT_YET>((ok) => setImmediate(ok, NOT_YET))

/**
 * Wraps `body` so that each read waits at most `stallMs` for the client. Only the time the loader
 * itself waits counts: while the loader is busy (backpressure from the CDN or the disk) nothing is read.
 */
export function idleBody(body: ReadableStream<Uint8Array>, stallMs: number): { stream: ReadableStream<Uint8Array>; idleMs(): number } {
  const reader = body.getReader()
  let waitingSince: number | undefined
  let failed = false
  let ended = false
  let timer: NodeJS.Timeout | undefined
  // A read not yet taken: the coalescing loop leaves it pending when the client has sent nothing more yet.
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined
  const read = () => {
    if (!pending) {
      pending = reader.read()
      pending.catch(() => {})
    }
    return pending
  }
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (ended) return controller.close()
      waitingSince = Date.now()
      if (timer) timer.refresh()
      else {
        timer = setTimeout(() => {
          if (waitingSince === undefined || failed) return
          failed = true
          const e = stalledBody(stallMs)
          controller.error(e)
          reader.cancel(e).catch(() => {})
        }, stallMs)
        timer.unref()
      }
      const parts: Uint8Array[] = []
      let bytes = 0
      try {
        // The first chunk is waited for; more are taken while they are already there, up to
        // COALESCE_BYTES, so the stages after this one see a few large chunks, not many socket reads.
        for (;;) {
          const r = parts.length === 0 ? await read() : await Promise.race([read(), nextTurn()])
          if (r === NOT_YET) break
          pending = undefined
          if (r.done) { ended = true; break }
          parts.push(r.value)
          bytes += r.value.byteLength
          if (bytes >= COALESCE_BYTES) break
        }
      } catch (e) {
        waitingSince = undefined
        clearTimeout(timer)
        if (!failed) controller.error(e)
        failed = true
        return
      }
      waitingSince = undefined
      if (failed) return
      if (parts.length) controller.enqueue(parts.length === 1 ? parts[0] : Buffer.concat(parts, bytes))
      if (ended) {
        clearTimeout(timer)
        if (!parts.length) controller.close()
      }
    },
    cancel(reason) {
      clearTimeout(timer)
      failed = true
      return reader.cancel(reason)
    },
  }, { highWaterMark: 0 })
  return { stream, idleMs: () => (waitingSince === undefined ? 0 : Date.now() - waitingSince) }
}
