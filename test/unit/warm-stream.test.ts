// The warm load's pull-based stream (functions/load/resource-stream.ts).
import { createServer, request as httpRequest, type Server } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync, truncateSync, readdirSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { stalledResponse } from '../../runtime/middleware/stalled-response'
import { openResource } from '../../functions/load/resource-stream'
import { heldPart } from '../../runtime/bindings/cache/holds'
import { encryptBuffer } from '../../shared/crypto/blob'
import { resourceAesKey } from '../../shared/crypto/keys'
import type { Env } from '../../shared/contract/function'

const env = { config: { RESOURCE_KEY_SALT: 'warm' } } as unknown as Env
const key = resourceAesKey(env)
const dir = mkdtempSync(join(tmpdir(), 'warm-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0

async function hold(big: Buffer) {
  const path = join(dir, `p${n++}.big`)
  writeFileSync(path, big)
  const fh = await open(path, 'r')
  const state = { released: 0, closed: false }
  const origClose = fh.close.bind(fh)
  fh.close = async () => { state.closed = true; return origClose() }
  const held = heldPart(path, fh, { smallSha256: 'x', bytes: big.length, sha256: 'x', storedAt: '' } as never, big.length, () => { state.released++ }, async () => {})
  return { path, held, state, fh }
}

async function readAll(body: ReadableStream<Uint8Array>) {
  const parts: Buffer[] = []
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

function split(plain: Buffer, smallBytes: number) {
  const blob = encryptBuffer(key, plain)
  return { small: blob.subarray(0, smallBytes), big: blob.subarray(smallBytes) }
}

describe('warm warm stream', () => {
  it('every small plaintext 0..64 bytes, every split', async () => {
    for (let p = 0; p <= 64; p++) {
      const plain = randomBytes(p)
      const len = encryptBuffer(key, plain).length
      for (let s = 0; s <= len; s++) {
        const { small, big } = split(plain, s)
        const { held, state } = await hold(big)
        const r = await openResource(env, held, 'f', 'x', small)
        expect(r.bytes).toBe(p)
        const out = await readAll(r.body)
        expect(out.equals(plain), `p=${p} s=${s}`).toBe(true)
        expect(state.released).toBe(1)
      }
    }
  }, 120_000)

  it('sizes around 1 MiB read boundaries', async () => {
    const M = 1 << 20
    for (const bigBytes of [M - 16, M, M + 16, 2 * M - 16, 2 * M, 2 * M + 16]) {
      for (const s of [16, 32, 48, 1024]) {
        const plainBytes = s + bigBytes - 16 - 1 // blob = s + big; plain = blob - 16 - pad
        const plain = randomBytes(plainBytes - (plainBytes % 16) + 5)
        const { small, big } = split(plain, s)
        const { held, state } = await hold(big)
        const r = await openResource(env, held, 'f', 'x', small)
        const out = await readAll(r.body)
        expect(out.equals(plain), `big=${big.length} s=${s}`).toBe(true)
        expect(state.released).toBe(1)
      }
    }
  }, 120_000)

  it('a cached part truncated under the loader: the body errors, never ends cleanly', async () => {
    const M = 1 << 20
    for (const cut of [0, 100, M, M + 16, 2 * M + 5]) {
      const plain = randomBytes(3 * M)
      const { small, big } = split(plain, 64)
      const { held, state, path } = await hold(big)
      const r = await openResource(env, held, 'f', 'x', small)
      truncateSync(path, cut)
      await expect(readAll(r.body), `cut=${cut}`).rejects.toThrow()
      expect(state.released).toBe(1)
    }
  })

  it('cancel before the first byte / mid-body releases the hold and closes the fd', async () => {
    const plain = randomBytes(5 << 20)
    const { small, big } = split(plain, 64)
    for (const after of [0, 1, 3]) {
      const { held, state } = await hold(big)
      const r = await openResource(env, held, 'f', 'x', small)
      const reader = r.body.getReader()
      for (let i = 0; i < after; i++) await reader.read()
      await reader.cancel()
      expect(state.released, `after=${after}`).toBe(1)
      await new Promise((ok) => setTimeout(ok, 50))
      expect(state.closed).toBe(true)
    }
  })

  it('many concurrent loads of one hold', async () => {
    const plain = randomBytes((3 << 20) + 7)
    const { small, big } = split(plain, 64)
    const { held, state } = await hold(big)
    const views = Array.from({ length: 20 }, () => held.retain())
    held.release()
    const outs = await Promise.all(views.map(async (v, i) => {
      const r = await openResource(env, v, 'f', 'x', small)
      if (i % 3 === 0) { const rd = r.body.getReader(); await rd.read(); await rd.cancel(); return plain }
      return readAll(r.body)
    }))
    for (const o of outs) expect(o.equals(plain)).toBe(true)
    expect(state.released).toBe(1)
    expect(state.closed).toBe(true)
  })
})

describe('warm warm stream through the node-server adapter, client aborts', () => {
  async function serve(make: () => Promise<Response>): Promise<{ server: Server; port: number }> {
    const server = createServer(getRequestListener(() => make()))
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    return { server, port: (server.address() as { port: number }).port }
  }
  for (const abortAfter of [0, 1, 64 * 1024, 2 << 20]) {
    it(`client aborts after ${abortAfter} bytes: hold released`, async () => {
      const plain = randomBytes(16 << 20)
      const { small, big } = split(plain, 64)
      const h = await hold(big)
      const { server, port } = await serve(async () => {
        const r = await openResource(env, h.held, 'f', 'x', small)
        return new Response(r.body, { headers: { 'content-length': String(r.bytes) } })
      })
      try {
        await new Promise<void>((ok) => {
          const req = httpRequest({ host: '127.0.0.1', port, path: '/' }, (res) => {
            let got = 0
            if (abortAfter === 0) { req.destroy(); return ok() }
            res.on('data', (c: Buffer) => { got += c.length; if (got >= abortAfter) { req.destroy(); ok() } })
            res.on('error', () => {})
          })
          req.on('error', () => {})
          req.end()
        })
        for (let i = 0; i < 100 && h.state.released === 0; i++) await new Promise((ok) => setTimeout(ok, 20))
        expect(h.state.released).toBe(1)
      } finally {
        server.closeAllConnections(); server.close()
      }
    })
  }
})

describe('warm client gone before the response is ready', () => {
  it('client aborts before headers: hold released', async () => {
    const plain = randomBytes(16 << 20)
    const { small, big } = split(plain, 64)
    const h = await hold(big)
    let gone!: () => void
    const clientGone = new Promise<void>((ok) => { gone = ok })
    const app = new Hono()
    app.post('/', stalledResponse(60_000, { warn() {}, info() {}, debug() {}, error() {} } as never), async () => {
      await clientGone
      await new Promise((ok) => setTimeout(ok, 50))
      const r = await openResource(env, h.held, 'f', 'x', small)
      return new Response(r.body, { headers: { 'content-length': String(r.bytes) } })
    })
    const server = createServer(getRequestListener(app.fetch))
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
    const port = (server.address() as { port: number }).port
    try {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', method: 'POST' })
      req.on('error', () => {})
      req.end()
      await new Promise((ok) => setTimeout(ok, 100))
      req.destroy()
      gone()
      for (let i = 0; i < 100 && h.state.released === 0; i++) await new Promise((ok) => setTimeout(ok, 20))
      expect(h.state.released).toBe(1)
    } finally {
      server.closeAllConnections(); server.close()
    }
  })
})

describe('warm read errors on the cached part', () => {
  const eio = () => Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' })
  function failing(big: Buffer, failOnCall: number) {
    let calls = 0
    let released = 0
    const held = {
      record: {} as never, bytes: big.length,
      stream: () => { throw new Error('unused') },
      async readAt(p: number, l: number) { if (++calls === failOnCall) throw eio(); return Buffer.from(big.subarray(p, p + l)) },
      retain() { throw new Error('unused') },
      release() { released++ },
    }
    return { held, released: () => released }
  }
  it('mid-stream EIO: the body errors, the hold is released once', async () => {
    const plain = randomBytes(5 << 20)
    const { small, big } = split(plain, 64)
    const f = failing(big, 3)
    const r = await openResource(env, f.held as never, 'f', 'x', small)
    await expect(readAll(r.body)).rejects.toThrow('EIO')
    expect(f.released()).toBe(1)
  })
  it('EIO on the tail read of a warm load is a 5xx problem the README promises (507), not a bare error (500)', async () => {
    const plain = randomBytes(1000)
    const { small, big } = split(plain, 64)
    const f = failing(big, 1)
    const e = await openResource(env, f.held as never, 'f', 'x', small).catch((x) => x)
    expect(f.released()).toBe(1)
    expect(e.status, `got ${e.constructor.name}: ${e.message}`).toBe(507)
  })
})
