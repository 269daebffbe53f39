// The stalled-response middleware: a client that has left cancels the response body at once (a held
// cache file is released), whether it left before the answer was ready or while it was sent.
import { EventEmitter } from 'node:events'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { stalledResponse } from '../../runtime/middleware/stalled-response'
import { createLogger } from '../../runtime/bindings/logger'
import { Writable } from 'node:stream'

const log = createLogger('error', new Writable({ write(_c, _e, done) { done() } }))

/** A body that never ends by itself and records its cancellation. */
function body(onCancel: () => void) {
  return new ReadableStream<Uint8Array>({
    start(controller) { controller.enqueue(new Uint8Array(8)) },
    cancel() { onCancel() },
  })
}

function app(onCancel: () => void) {
  const a = new Hono()
  a.use('*', stalledResponse(60_000, log))
  a.get('/x', () => new Response(body(onCancel)))
  return a
}

const outgoing = (destroyed: boolean) => Object.assign(new EventEmitter(), { destroyed, destroy() {} })

describe('stalledResponse', () => {
  it('cancels the body at once when the client left before the answer was ready', async () => {
    let cancelled = false
    await app(() => { cancelled = true }).request('/x', {}, { outgoing: outgoing(true) })
    await new Promise((r) => setTimeout(r, 10))
    expect(cancelled).toBe(true)
  })

  it('cancels the body when the connection closes while it is sent', async () => {
    let cancelled = false
    const out = outgoing(false)
    const res = await app(() => { cancelled = true }).request('/x', {}, { outgoing: out })
    const reader = res.body!.getReader()
    expect((await reader.read()).value?.length).toBe(8)
    await new Promise((r) => setTimeout(r, 10))
    expect(cancelled).toBe(false)
    out.emit('close')
    await new Promise((r) => setTimeout(r, 10))
    expect(cancelled).toBe(true)
  })
})
