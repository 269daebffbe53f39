// The upload body as a plaintext stream: raw octet-stream or multipart (`data` file, `folder` field).
import { decodeField, make as makeParser } from 'multipasta'
import { PassThrough, Readable } from 'node:stream'
import { HttpError, isHttpError } from '../../shared/contract/http-error'
import { idleBody } from './idle-body'

/** The plaintext stream and, once the body is parsed, the folder it names. */
export interface UploadBody {
  data: Readable
  /** Resolves when the body has been read to its end: the multipart `folder` field, if any. */
  folder: Promise<string | undefined>
  /** A raw octet-stream body: its folder is known before the body is read (`?folder=`). */
  raw: boolean
  /** A raw body's exact length (its Content-Length), when it has one: the one-pass upload. */
  length?: number
  /** How long the loader has been waiting for the client's next byte (0 when it is not waiting). */
  idleMs(): number
}

/**
 * Opens the request body per its content type; 415 for anything but the two forms. A client that
 * sends no byte for `stallMs` while the loader waits for one fails the body with a 408.
 */
export function openUploadBody(request: Request, stallMs: number): Promise<UploadBody> {
  const type = request.headers.get('content-type') ?? ''
  if (!request.body) throw new HttpError(400, 'the upload has no body', { type: 'empty-upload' })
  const body = idleBody(request.body, stallMs)
  const source = Readable.fromWeb(body.stream as import('node:stream/web').ReadableStream, { highWaterMark: 1 << 20 })
  // Errors reach the caller through its pipeline; an unconsumed stream must not crash the process.
  source.on('error', () => {})
  if (/^application\/octet-stream\b/i.test(type)) {
    const cl = request.headers.get('content-length')
    const length = cl !== null && /^[0-9]{1,15}$/.test(cl) ? Number(cl) : undefined
    return Promise.resolve({ data: source, folder: Promise.resolve(undefined), raw: true, length, idleMs: body.idleMs })
  }
  if (!/^multipart\/form-data\b/i.test(type)) {
    source.destroy()
    throw new HttpError(415, 'send the file as application/octet-stream or multipart/form-data with a file field "data"', { type: 'unsupported-media-type' })
  }
  return multipart(source, request.headers, body.idleMs)
}

function multipart(source: Readable, headers: Headers, idleMs: () => number): Promise<UploadBody> {
  return new Promise((resolve, reject) => {
    const bad = (msg: string) => new HttpError(400, msg, { type: 'bad-multipart' })
    let folder: string | undefined
    let gotFile = false
    let done = false
    let failed = false
    let finish!: (f: string | undefined) => void
    let fail!: (e: unknown) => void
    const folderP = new Promise<string | undefined>((ok, ko) => { finish = ok; fail = ko })
    folderP.catch(() => {})
    const data = new PassThrough({ highWaterMark: 1 << 20 })
    data.on('error', () => {}) // surfaced through the caller's pipeline and `folder`
    let drain = false
    const abort = (err: HttpError) => {
      if (failed) return
      failed = true
      data.destroy(err)
      fail(err)
      reject(err)
      source.destroy()
    }
    const parser = makeParser({
      headers: Object.fromEntries(headers),
      // `data` streams whatever its headers say; `folder` is a small field even when sent with a
      // filename; other files are skipped; fields stay small.
      isFile: (info) => info.name === 'data' || (info.name !== 'folder' && info.filename !== undefined),
      maxParts: 8,
      maxFieldSize: 1024,
      onField: (info, value) => {
        if (info.name !== 'folder') return
        if (folder !== undefined) abort(bad('the multipart body has more than one "folder" part'))
        folder = decodeField(info, value)
      },
      onFile: (info) => {
        if (info.name !== 'data') return () => {}
        if (gotFile) {
          abort(bad('the multipart body has more than one "data" part'))
          return () => {}
        }
        gotFile = true
        resolve({ data, folder: folderP, raw: false, idleMs })
        return (chunk) => {
          if (chunk === null) data.end()
          else if (!data.write(chunk)) drain = true
        }
      },
      onError: (e) => abort(e._tag === 'InvalidBoundary'
        ? bad('the multipart body has no boundary')
        : bad(`the multipart body is malformed or truncated (${e._tag}${'limit' in e ? ` ${e.limit}` : ''})`)),
      onDone: () => {
        done = true
        if (!gotFile) reject(new HttpError(422, 'the multipart body has no file field "data"', { type: 'missing-data' }))
        finish(folder)
      },
    })
    source.on('data', (chunk: Buffer) => {
      if (failed || done) return
      parser.write(chunk)
      if (drain && !failed) {
        drain = false
        source.pause()
        data.once('drain', () => source.resume())
      }
    })
    source.on('end', () => {
      if (failed || done) return
      parser.end()
      if (!done) abort(bad('the multipart body is malformed or truncated (it ends before its closing boundary)'))
    })
    source.on('error', (e) => abort(isHttpError(e) ? e : bad('the multipart body could not be read')))
    data.on('close', () => { if (!data.writableFinished) source.destroy() })
  })
}
