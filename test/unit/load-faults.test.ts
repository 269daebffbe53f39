// Fault injection on the load path (contract world: MSW for the Resource API and the CDN, the
// source functions in-process): what /status says about a download, the CDN socket after a local failure.
import { createHash } from 'node:crypto'
import { HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import { contractWorld } from '../helpers/contract'
import { firstPlainGet } from '../mocks/cdn'
import { server } from '../mocks/server'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('/status during a download', () => {
  it('an older upload (no manifest): bytesTotal is the size the CDN announced, never 0 under a growing bytesDone', async () => {
    const w = await contractWorld()
    const plain = w.seed('old.bin')
    expect((await w.login()).status).toBe(200)
    const obj = w.cdn.objects.get('models/old.bin.big')!
    let go!: () => void
    const resumed = new Promise<void>((r) => { go = r })
    server.use(firstPlainGet('models/old.bin.big', () => new HttpResponse(new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(obj.body.subarray(0, 1000)))
        void resumed.then(() => { c.enqueue(new Uint8Array(obj.body.subarray(1000))); c.close() })
      },
    }), { status: 200, headers: { etag: obj.etag, 'content-length': String(obj.body.length), ...obj.meta } })))
    const loading = w.req('/load/old.bin')
    let listed: { bytesDone: number; bytesTotal: number }[] = []
    for (let i = 0; i < 400 && !listed.some((d) => d.bytesDone >= 1000); i++) {
      listed = (await (await w.app.request('/status')).json()).downloads
      await new Promise((r) => setTimeout(r, 5))
    }
    go()
    expect(listed).toEqual([{ folder: 'models', filename: 'old.bin', bytesDone: 1000, bytesTotal: obj.body.length }])
    const r = await loading
    expect(r.status).toBe(200)
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(plain))
  })
})
