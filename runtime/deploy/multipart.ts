// Reads a deployment body (multipart/form-data) into its parts, bounded by ADMIN_BODY_MAX_BYTES:
// a body above the bound is refused with 413 as soon as it is seen (declared or counted).
import { Readable } from 'node:stream'
import busboy from 'busboy'
import { Refused } from './release'
import type { Parts } from './checks'

const tooLarge = (max: number) => new Refused(`the deployment body is larger than ADMIN_BODY_MAX_BYTES (${max} bytes)`, 413)

/** The parts of a multipart body, part name → bytes (file and plain fields alike). */
export async function readParts(request: Request, max: number): Promise<Parts> {
  const type = request.headers.get('content-type') ?? ''
  if (!/^multipart\/form-data;/i.test(type)) throw new Refused('a deployment is a multipart/form-data body', 415)
  const declared = Number(request.headers.get('content-length') ?? NaN)
  if (declared > max) throw tooLarge(max)
  if (!request.body) throw new Refused('the deployment body is empty')
  const parts: Parts = new Map()
  let seen = 0
  let bb: busboy.Busboy
  try {
    bb = busboy({ headers: { 'content-type': type }, limits: { fieldSize: max, fileSize: max, parts: 300 } })
  } catch {
    throw new Refused('the multipart body has no boundary', 400)
  }
  const source = Readable.fromWeb(request.body as import('node:stream/web').ReadableStream)
  return new Promise<Parts>((ok, fail) => {
    let failed = false
    const stop = (e: Error) => {
      if (failed) return
      failed = true
      source.destroy()
      fail(e)
    }
    const add = (name: string, bytes: Buffer) => {
      if (parts.has(name)) return stop(new Refused(`the part ${JSON.stringify(name.slice(0, 80))} appears twice`))
      parts.set(name, bytes)
    }
    bb.on('file', (name, stream) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => add(name, Buffer.concat(chunks)))
    })
    bb.on('field', (name, value) => add(name, Buffer.from(value, 'utf8')))
    bb.on('partsLimit', () => stop(new Refused('too many parts in the deployment body')))
    bb.on('error', () => stop(new Refused('the multipart body is malformed', 400)))
    bb.on('close', () => { if (!failed) ok(parts) })
    source.on('data', (c: Buffer) => {
      seen += c.length
      if (seen > max) stop(tooLarge(max))
    })
    source.on('error', () => stop(new Refused('the deployment body was cut', 400)))
    source.pipe(bb)
  })
}
