// Reads a deployment body (multipart/form-data) into its parts, bounded by ADMIN_BODY_MAX_BYTES:
// a body above the bound is refused with 413 as soon as it is seen (declared or counted).
// The parser is multipasta, as for uploads (functions/upload/body.ts).
import { decodeField, make as makeParser } from 'multipasta'
import { Readable } from 'node:stream'
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
  const source = Readable.fromWeb(request.body as import('node:stream/web').ReadableStream)
  return new Promise<Parts>((ok, fail) => {
    let failed = false
    let done = false
    let seen = 0
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
    const parser = makeParser({
      headers: { 'content-type': type },
      // Every part is kept whole in memory: the body is bounded by `max`.
      isFile: () => true,
      maxParts: 300,
      maxFieldSize: max,
      onField: (info, value) => add(info.name, Buffer.from(decodeField(info, value), 'utf8')),
      onFile: (info) => {
        const chunks: Buffer[] = []
        return (chunk) => {
          if (chunk === null) add(info.name, Buffer.concat(chunks))
          else chunks.push(Buffer.from(chunk))
        }
      },
      onError: (e) => stop(e._tag === 'InvalidBoundary' ? new Refused('the multipart body has no boundary', 400)
        : e._tag === 'ReachedLimit' && 'limit' in e && e.limit === 'MaxParts' ? new Refused('too many parts in the deployment body')
          : new Refused('the multipart body is malformed', 400)),
      onDone: () => {
        done = true
        if (!failed) ok(parts)
      },
    })
    source.on('data', (c: Buffer) => {
      if (failed || done) return
      seen += c.length
      if (seen > max) return stop(tooLarge(max))
      parser.write(c)
    })
    source.on('end', () => {
      if (failed || done) return
      parser.end()
      if (!done) stop(new Refused('the multipart body is malformed (it ends before its closing boundary)', 400))
    })
    source.on('error', () => stop(new Refused('the deployment body was cut', 400)))
  })
}
