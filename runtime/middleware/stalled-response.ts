// Ends a transfer's response when the client stops reading it for CLIENT_STALL_TIMEOUT_MS: a
// stalled client must not hold a transfer slot and an open cache file forever. A client that has
// left (the connection closed, even before the answer was ready) cancels the body at once. A body
// that fails mid-way cuts the connection with one log line.
import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from '../../shared/contract/logger'
import type { NodeBindings } from './client-address'

/**
 * Wraps `body` so that a wait of more than `ms` for the consumer's next read (after a chunk was
 * handed over, or before the first) calls `onStall` and cancels the source. Time the source
 * itself takes (a slow upstream) is not counted: its own timeouts bound it. `left` aborted (the
 * client is gone) cancels the source at once.
 */
export function stallBound(body: ReadableStream<Uint8Array>, ms: number, onStall: () => void, left?: AbortSignal,
  onCut?: (e: unknown) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  const gone = () => {
    clearTimeout(timer)
    timer = undefined
    reader.cancel(new Error('the client left')).catch(() => {})
  }
  if (left?.aborted) queueMicrotask(gone)
  else left?.addEventListener('abort', gone, { once: true })
  const stalled = () => {
    reader.cancel(new Error(`the client read nothing for ${ms} ms`)).catch(() => {})
    onStall()
  }
  let timer: NodeJS.Timeout | undefined = setTimeout(stalled, ms)
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      clearTimeout(timer)
      timer = undefined
      let read: ReadableStreamReadResult<Uint8Array>
      try {
        read = await reader.read()
      } catch (e) {
        // The source failed mid-body (a deliberate cut): `onCut` ends the connection itself, so the
        // server sees an end, not an error it would print (stack and all) outside the log.
        if (!onCut) throw e
        onCut(e)
        return controller.close()
      }
      const { done, value } = read
      if (done) return controller.close()
      controller.enqueue(value)
      if (!left?.aborted) timer = setTimeout(stalled, ms)
    },
    cancel(reason) {
      clearTimeout(timer)
      return reader.cancel(reason)
    },
  }, { highWaterMark: 0 })
}

/**
 * Bounds a stalled response body: no read by the client for `ms` → the connection is closed.
 * `onCut(c)` hears of a body that failed mid-way (the answer's status said success; a trial counts it).
 */
export const stalledResponse = (ms: number, log: Logger, onCut?: (c: Context) => void): MiddlewareHandler => async (c, next) => {
  await next()
  const out = (c.env as NodeBindings | undefined)?.outgoing
  const body = c.res.body
  if (!out || !body) return
  // The client may have left while the answer was prepared (a cold download): its body, e.g. a
  // held cache file, is released now, not when a write to the dead socket fails (or never).
  const left = new AbortController()
  if (out.destroyed) left.abort()
  else out.once('close', () => left.abort())
  c.res = new Response(stallBound(body, ms, () => {
    log.warn({ path: c.req.path, stallMs: ms }, 'the client stopped reading the response; closing it (CLIENT_STALL_TIMEOUT_MS)')
    out.destroy()
  }, left.signal, (e) => {
    // One log line; the caller sees the connection end short of Content-Length.
    if (!left.signal.aborted) {
      log.warn({ requestId: c.get('requestId' as never), path: c.req.path, err: (e as Error)?.message ?? String(e) }, 'the response body failed mid-way; the connection is cut')
    }
    out.destroy()
    if (!left.signal.aborted) onCut?.(c)
  }), c.res)
}
