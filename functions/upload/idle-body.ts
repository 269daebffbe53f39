// The upload body with an idle bound: a client that sends nothing for CLIENT_STALL_TIMEOUT_MS while
// the loader waits for its next byte fails the body with a 408 (its transfer slot and temp file go).
import { HttpError } from '../../shared/contract/http-error'

/** 408 for a client that stopped sending its upload body. */
export const stalledBody = (ms: number) => new HttpError(408, `the upload body stalled: the client sent no byte for ${Math.round(ms)} ms (CLIENT_STALL_TIMEOUT_MS)`, {
  type: 'upload-stalled', headers: { connection: 'close' },
})

/**
 * Wraps `body` so that each read waits at most `stallMs` for the client. Only the time the loader
 * itself waits counts: while the loader is busy (backpressure from the CDN or the disk) nothing is read.
 */
export function idleBody(body: ReadableStream<Uint8Array>, stallMs: number): { stream: ReadableStream<Uint8Array>; idleMs(): number } {
  const reader = body.getReader()
  let waitingSince: number | undefined
  let failed = false
  let timer: NodeJS.Timeout | undefined
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
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
      let r: ReadableStreamReadResult<Uint8Array>
      try {
        r = await reader.read()
      } catch (e) {
        waitingSince = undefined
        clearTimeout(timer)
        if (!failed) controller.error(e)
        failed = true
        return
      }
      waitingSince = undefined
      if (failed) return
      if (r.done) {
        clearTimeout(timer)
        controller.close()
      } else controller.enqueue(r.value)
    },
    cancel(reason) {
      clearTimeout(timer)
      failed = true
      return reader.cancel(reason)
    },
  }, { highWaterMark: 0 })
  return { stream, idleMs: () => (waitingSince === undefined ? 0 : Date.now() - waitingSince) }
}
