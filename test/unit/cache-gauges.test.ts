// /metrics and /status report the same cache use (http.md: "the cache's use"; metrics: cache bytes and
// entries), also after a failed download left a partial file that counts against CACHE_MAX_BYTES.
import { http, HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import { contractWorld } from '../helpers/contract'
import { CDN } from '../mocks/cdn'
import { server } from '../mocks/server'

const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)![1])

describe('cache gauges', () => {
  it('after a download cut mid-way, loader_cache_bytes is /status cache.bytes (partial files count against the bound)', async () => {
    const w = await contractWorld({ CDN_READ_RETRIES: '0' })
    w.seed('cut.bin', Buffer.alloc(300_000, 7))
    w.seed('whole.bin', Buffer.alloc(100_000, 9))
    expect((await w.login()).status).toBe(200)
    const whole = await w.req('/load/whole.bin')
    expect(whole.status).toBe(200)
    await whole.arrayBuffer()
    // Every GET of cut.bin's big part sends 64 KiB, then the connection breaks.
    const obj = w.cdn.objects.get('models/cut.bin.big')!
    server.use(http.get(`${CDN}/models/cut.bin.big`, () => new HttpResponse(new ReadableStream({
      start(c) { c.enqueue(new Uint8Array(obj.body.subarray(0, 65_536))); setTimeout(() => c.error(new Error('connection reset')), 10) },
    }), { status: 200, headers: { etag: obj.etag, 'content-length': String(obj.body.length), ...obj.meta } })))
    const cut = await w.req('/load/cut.bin')
    expect(cut.status).toBeGreaterThanOrEqual(502)
    await cut.arrayBuffer()
    const status = (await (await w.app.request('/status')).json()).cache
    const metrics = await (await w.app.request('/metrics')).text()
    expect(status.entries).toBe(1)
    // The cached part and the partial file of the cut download.
    expect(status.bytes).toBeGreaterThan(w.cdn.objects.get('models/whole.bin.big')!.body.length)
    expect({ bytes: gauge(metrics, 'loader_cache_bytes'), entries: gauge(metrics, 'loader_cache_entries') }).toEqual({ bytes: status.bytes, entries: status.entries })
  })
})
