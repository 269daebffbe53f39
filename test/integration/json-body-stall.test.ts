// A client that stops sending a small JSON body (POST /login, /unlock, /load): 408 after
// CLIENT_STALL_TIMEOUT_MS, not a handler (and, for /load, a transfer slot) held forever — the
// server sets no whole-request timeout, so nothing else would end it.
import { describe, expect, it } from 'vitest'
import loginFn from '../../functions/login/index'
import unlockFn from '../../functions/unlock/index'
import loadFn from '../../functions/load/index'
import { makeApp } from '../helpers/env'

/** A body that sends the start of a JSON object and then nothing, never ending; `cancelled` once the loader lets go. */
function stalledBody() {
  let cancelled = false
  const stream = new ReadableStream<Uint8Array>({
    start(c) { c.enqueue(new TextEncoder().encode('{"email":')) },
    cancel() { cancelled = true },
  })
  return { stream, cancelled: () => cancelled }
}

describe('a JSON body that stalls', () => {
  it.each([
    ['/login', 'chunked'], ['/unlock', 'chunked'], ['/load/x.bin', 'chunked'],
    ['/login', 'content-length'], ['/unlock', 'content-length'], ['/load/x.bin', 'content-length'],
  ])('%s (%s) answers 408 body-stalled, lets go of the body, and frees its slot', async (path, framing) => {
    const w = await makeApp([loginFn, unlockFn, loadFn], { CLIENT_STALL_TIMEOUT_MS: '1000', MAX_CONCURRENT_TRANSFERS: '1', LOGIN_RATE_PER_MINUTE: '1000', RESOURCE_API_URL: 'http://127.0.0.1:9' })
    const body = stalledBody()
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(framing === 'content-length' ? { 'content-length': '100' } : {}) }
    const r = await w.app.request(path, { method: 'POST', headers, body: body.stream, duplex: 'half' } as RequestInit)
    expect(r.status).toBe(408)
    expect(r.headers.get('content-type')).toMatch(/problem\+json/)
    expect(r.headers.get('connection')).toBe('close')
    expect(await r.json()).toMatchObject({ type: expect.stringMatching(/body-stalled/), status: 408 })
    expect(body.cancelled()).toBe(true)
    // The next request is served (for /load: the one transfer slot is free again; 401, not 503).
    const next = await w.app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect((await next.json()).type).not.toMatch(/busy|body-stalled/)
    expect([401, 422]).toContain(next.status)
  })
})

describe('a JSON body that trickles', () => {
  it('a byte at a time, never idle for CLIENT_STALL_TIMEOUT_MS but slower than twice it in all: 408, body let go, slot freed', async () => {
    const w = await makeApp([loadFn], { CLIENT_STALL_TIMEOUT_MS: '1000', MAX_CONCURRENT_TRANSFERS: '1', RESOURCE_API_URL: 'http://127.0.0.1:9' })
    let cancelled = false
    let timer: NodeJS.Timeout | undefined
    const stream = new ReadableStream<Uint8Array>({
      start(c) { timer = setInterval(() => c.enqueue(new TextEncoder().encode(' ')), 300) },
      cancel() { cancelled = true; clearInterval(timer) },
    })
    try {
      const r = await w.app.request('/load/x.bin', { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit)
      expect(r.status).toBe(408)
      expect(await r.json()).toMatchObject({ type: expect.stringMatching(/body-stalled/), detail: expect.stringMatching(/took longer than 2000 ms/) })
      expect(cancelled).toBe(true)
      const next = await w.app.request('/load/x.bin', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      expect(next.status).not.toBe(503)
    } finally {
      clearInterval(timer)
    }
  })
})
