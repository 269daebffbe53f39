// The upload body wrapper: chunks already received are joined (up to 1 MiB) so the pipeline after
// it sees few large chunks; a chunk not yet there is never waited for to fill one; the end and a
// stalled client still come through.
import { describe, expect, it } from 'vitest'
import { idleBody } from '../../functions/upload/idle-body'

const KiB = 1024
const chunk = (i: number, n = 64 * KiB) => new Uint8Array(n).fill(i & 0xff)

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) out.push(c)
  return out
}
const concat = (cs: Uint8Array[]) => Buffer.concat(cs.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)))

describe('idleBody', () => {
  it('joins chunks that are already there into chunks of up to 1 MiB, bytes in order', async () => {
    const parts = Array.from({ length: 40 }, (_, i) => chunk(i))
    const src = new ReadableStream<Uint8Array>({ start(c) { for (const p of parts) c.enqueue(p); c.close() } })
    const got = await readAll(idleBody(src, 5000).stream)
    expect(got.map((c) => c.byteLength)).toEqual([1024 * KiB, 1024 * KiB, 512 * KiB])
    expect(concat(got).equals(concat(parts))).toBe(true)
  })

  it('hands over what has arrived without waiting for more to fill a chunk', async () => {
    let n = 0
    // One chunk per timer tick: a slow client; each read must come back with the one chunk there is.
    const src = new ReadableStream<Uint8Array>({
      async pull(c) {
        await new Promise((ok) => setTimeout(ok, 5))
        if (n === 4) return c.close()
        c.enqueue(chunk(n++, 1000))
      },
    }, { highWaterMark: 0 })
    const got = await readAll(idleBody(src, 5000).stream)
    expect(got.map((c) => c.byteLength)).toEqual([1000, 1000, 1000, 1000])
  })

  it('fails a body whose client sends nothing for the stall bound with a 408', async () => {
    const src = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(chunk(1)) } })
    const r = idleBody(src, 50).stream.getReader()
    expect((await r.read()).value?.byteLength).toBe(64 * KiB)
    await expect(r.read()).rejects.toMatchObject({ status: 408 })
  })
})
