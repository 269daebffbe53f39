// The stalled-response middleware: a client that has left cancels the response body at once (a held
// cache file is released), whether it left before the answer was ready or while it was sent.
import { EventEmitter } from 'node:events'
import { createServer, request } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import { stalledResponse } from '../../runtime/middleware/stalled-response'
import { createLogger } from '../../runtime/bindings/logger'
import { Writable } from 'node:stream'
import { createApp } from '../../runtime/app'
import { createRateLimiter } from '../../runtime/middleware/rate-limit'
import { defineFunction } from '../../shared/contract/function'
import { fromSource, makeApp } from '../helpers/env'

const log = createLogger('error', new Writable({ write(_c, _e, done) { done() } }))

/** A body that never ends by itself and records its cancellation. */
function body(onCancel: () => void) {
  return new ReadableStream<Uint8Array>({
    start(controller) { controller.enqueue(new Uint8Array(8)) },
    cancel() { onCancel() },
  })
}

let cuts = 0
function app(onCancel: () => void) {
  const a = new Hono()
  a.use('*', stalledResponse(60_000, log, () => { cuts++ }))
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
    cuts = 0
    out.emit('close')
    await new Promise((r) => setTimeout(r, 10))
    expect(cancelled).toBe(true)
    // A client that leaves is no failure of the body.
    expect(cuts).toBe(0)
  })
})

describe('a body that fails mid-way (a deliberate cut: an unverified chunk, a full disk)', () => {
  it.each([
    { what: 'after the headers went out', first: 1 },
    { what: 'before the server wrote the headers', first: 0 },
  ])('$what: the connection is cut short of Content-Length, with one log line and nothing printed outside the log', async ({ first }) => {
    const lines: string[] = []
    const sink = createLogger('info', new Writable({ write(c, _e, done) { lines.push(String(c)); done() } }))
    const a = new Hono()
    let cutSeen = 0
    a.use('*', stalledResponse(60_000, sink, () => { cutSeen++ }))
    a.get('/x', () => {
      let n = 0
      return new Response(new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (n++ < first) {
            await new Promise((r) => setTimeout(r, 20))
            return controller.enqueue(new Uint8Array(8))
          }
          controller.error(new Error('chunk 3 of the big part failed its hash'))
        },
      }), { headers: { 'content-length': '100' } })
    })
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {})
    const server = createServer(getRequestListener(a.fetch))
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    try {
      const port = (server.address() as { port: number }).port
      const got = await new Promise<{ bytes: number; complete: boolean }>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/x' }, (res) => {
          let bytes = 0
          res.on('data', (c: Buffer) => { bytes += c.length })
          res.on('close', () => resolve({ bytes, complete: res.complete }))
          res.on('error', () => {})
        })
        req.on('error', () => resolve({ bytes: -1, complete: false }))
        req.end()
      })
      expect(got.complete).toBe(false)
      expect(got.bytes).toBeLessThan(100)
      expect(printed).not.toHaveBeenCalled()
      expect(lines.filter((l) => l.includes('failed mid-way'))).toHaveLength(1)
      expect(lines.join('')).toContain('chunk 3 of the big part failed its hash')
      // Told to the trial's observer (runtime/app.ts: a 502 for the function that answered).
      expect(cutSeen).toBe(1)
    } finally {
      printed.mockRestore()
      server.closeAllConnections()
      server.close()
    }
  })
})

describe('the app counts a cut body for the trial', () => {
  it('observe() hears a 200 and then a 502 for the function whose transfer body failed mid-way', async () => {
    const fn = defineFunction({ name: 'cutter', routes: [{ method: 'GET', path: '/cut', body: 'none', transfer: true }],
      async fetch() {
        let n = 0
        return new Response(new ReadableStream<Uint8Array>({
          pull(c) { if (n++ === 0) c.enqueue(new Uint8Array(8)); else c.error(new Error('cut')) },
        }), { headers: { 'content-length': '100' } })
      } })
    const { env } = await makeApp([fn])
    const seen: [string, number][] = []
    const a = createApp(fromSource([fn]), { env, limiter: createRateLimiter(10), transfers: { active: 0 }, observe: (f, status) => { seen.push([f.info.name, status]) } })
    const server = createServer(getRequestListener(a.fetch))
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    try {
      const port = (server.address() as { port: number }).port
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/cut' }, (res) => { res.resume(); res.on('close', resolve); res.on('error', () => {}) })
        req.on('error', () => resolve())
        req.end()
      })
      for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10))
      expect(seen).toEqual([['cutter', 200], ['cutter', 502]])
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })
})
