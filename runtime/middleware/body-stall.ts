// Bounds the wait for a JSON request body: a client that sends no byte for CLIENT_STALL_TIMEOUT_MS,
// or whose whole (small) body takes longer than twice that, is answered 408. The server sets no
// whole-request timeout (uploads may take long), so without this a stalled or trickling body on
// /login, /unlock or /load held its handler (and a transfer slot) as long as the client liked.
import type { MiddlewareHandler } from 'hono'
import { HttpError } from '../../shared/contract/http-error'

/** 408 for a client that stopped sending a (small) request body. */
const stalled = (ms: number) => new HttpError(408, `the request body stalled: the client sent no byte for ${ms} ms (CLIENT_STALL_TIMEOUT_MS)`, {
  type: 'body-stalled', headers: { connection: 'close' },
})

/** 408 for a client whose whole body took too long, byte by byte. */
const tooSlow = (ms: number) => new HttpError(408, `the request body took longer than ${ms} ms to arrive (twice CLIENT_STALL_TIMEOUT_MS)`, {
  type: 'body-stalled', headers: { connection: 'close' },
})

/**
 * Wraps `body` so that each wait for the client's next chunk lasts at most `ms`, and the whole body
 * at most `totalMs` from the first read; then it fails with a 408 and lets go of the source.
 */
export function idleBounded(body: ReadableStream<Uint8Array>, ms: number, totalMs = Infinity): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  let deadline: number | undefined
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: NodeJS.Timeout | undefined
      deadline ??= performance.now() + totalMs
      const left = deadline - performance.now()
      const wait = Math.max(0, Math.min(ms, left))
      try {
        const r = await Promise.race([reader.read(), new Promise<never>((_ok, ko) => { timer = setTimeout(() => ko(wait < ms ? tooSlow(totalMs) : stalled(ms)), wait) })])
        if (r.done) controller.close()
        else controller.enqueue(r.value)
      } catch (e) {
        reader.cancel(e).catch(() => {})
        controller.error(e)
      } finally {
        clearTimeout(timer)
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 })
}

/** The middleware: the request's body, if any, read with the idle bound of `ms`. */
export const bodyStall = (ms: number): MiddlewareHandler => async (c, next) => {
  const body = c.req.raw.body
  if (body) c.req.raw = new Request(c.req.raw, { body: idleBounded(body, ms, 2 * ms), duplex: 'half' } as RequestInit)
  await next()
}
