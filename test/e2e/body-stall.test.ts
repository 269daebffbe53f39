// The built runtime against a client that stops sending a small JSON body: 408 and the connection
// closed after CLIENT_STALL_TIMEOUT_MS, the transfer slot of /load given back (the server sets no
// whole-request timeout, so before the bound such a client held both forever).
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLoader, type LoaderProcess } from '../helpers/spawn'
import { SALTS } from '../helpers/vectors'

let l: LoaderProcess
beforeAll(async () => {
  l = await startLoader({ ...SALTS, CLIENT_STALL_TIMEOUT_MS: '1000', MAX_CONCURRENT_TRANSFERS: '1', RESOURCE_API_URL: 'http://127.0.0.1:9' })
})
afterAll(async () => l?.stop())

/** Sends the headers and the start of a body announced as 100 bytes, then nothing; resolves with what came back when the loader closed. */
const stall = (path: string) => new Promise<string>((resolve) => {
  const sock = connect(l.port, '127.0.0.1', () => {
    sock.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"email":`)
  })
  let got = ''
  sock.on('data', (d) => { got += d })
  sock.on('close', () => resolve(got))
  sock.on('error', () => {})
})

describe('a JSON body that stalls', () => {
  it.each(['/login', '/unlock', '/load/x.bin'])('%s: 408 body-stalled, connection closed, and the next request is served', async (path) => {
    const answer = await stall(path)
    expect(answer).toMatch(/^HTTP\/1\.1 408/)
    expect(answer).toContain('body-stalled')
    const next = await fetch(`${l.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect([401, 422]).toContain(next.status)
  })
})
