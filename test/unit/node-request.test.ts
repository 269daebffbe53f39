// nodeRequest's stall timeout (shared/upstream/node-request.ts) under the MSW interceptor the unit
// tests use: the stalled body fails with the TimeoutError (504, not 502), and nothing else is thrown.
import { http, HttpResponse } from 'msw'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeRequest } from '../../shared/upstream/node-request'
import { server } from '../mocks/server'

const strays: unknown[] = []
const stray = (e: unknown) => { strays.push(e) }
afterEach(() => { process.off('unhandledRejection', stray) })

describe('nodeRequest stall timeout', () => {
  it('a body that stalls mid-way fails with the timeout itself, and leaves no unhandled rejection behind', async () => {
    process.on('unhandledRejection', stray)
    server.use(http.get('http://stall.test/big', () => new HttpResponse(new ReadableStream({ start(c) { c.enqueue(new Uint8Array(1000)) } }), { status: 200 })))
    const res = await nodeRequest({ method: 'GET', url: 'http://stall.test/big', timeoutMs: 200 })
    let got = 0
    const failed = await new Promise<Error>((resolve) => {
      res.on('data', (c: Buffer) => { got += c.length })
      res.on('error', resolve)
    })
    expect(got).toBe(1000)
    expect(failed.name).toBe('TimeoutError')
    // Let any deferred error surface before looking.
    await new Promise((r) => setTimeout(r, 300))
    expect(strays.map((e) => String(e))).toEqual([])
  })
})
