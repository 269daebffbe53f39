// The upload body as a plaintext stream: raw octet-stream or multipart (`data` file, `folder` field).
import busboy from 'busboy'
import { PassThrough, Readable } from 'node:stream'
import { HttpError } from '../../shared/contract/http-error'

/** The plaintext stream and, once the body is parsed, the folder it names. */
export interface UploadBody {
  data: Readable
  /** Resolves when the body has been read to its end: the multipart `folder` field, if any. */
  folder: Promise<string | undefined>
  /** A raw octet-stream body: its folder is known before the body is read (`?folder=`). */
  raw: boolean
}

/** Opens the request body per its content type; 415 for anything but the two forms. */
export function openUploadBody(request: Request): Promise<UploadBody> {
  const type = request.headers.get('content-type') ?? ''
  if (!request.body) throw new HttpError(400, 'the upload has no body', { type: 'empty-upload' })
  const source = Readable.fromWeb(request.body as import('node:stream/web').ReadableStream, { highWaterMark: 1 << 20 })
  // Errors reach the caller through its pipeline; an unconsumed stream must not crash the process.
  source.on('error', () => {})
  if (/^application\/octet-stream\b/i.test(type)) {
    return Promise.resolve({ data: source, folder: Promise.resolve(undefined), raw: true })
  }
  if (!/^multipart\/form-data\b/i.test(type)) {
    source.destroy()
    throw new HttpError(415, 'send the file as application/octet-stream or multipart/form-data with a file field "data"', { type: 'unsupported-media-type' })
  }
  return multipart(source, request.headers)
}

function multipart(source: Readable, headers: Headers): Promise<UploadBody> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy
    try {
      bb = busboy({ headers: Object.fromEntries(headers), limits: { files: 1, fields: 4, fieldSize: 1024, fieldNameSize: 64 }, highWaterMark: 1 << 20 })
    } catch {
      source.destroy()
      return reject(new HttpError(400, 'the multipart body has no boundary', { type: 'bad-multipart' }))
    }
    let folder: string | undefined
    let gotFile = false
    let finish!: (f: string | undefined) => void
    let fail!: (e: unknown) => void
    const folderP = new Promise<string | undefined>((ok, ko) => { finish = ok; fail = ko })
    folderP.catch(() => {})
    const data = new PassThrough({ highWaterMark: 1 << 20 })
    data.on('error', () => {}) // surfaced through the caller's pipeline and `folder`
    const bad = (msg: string) => new HttpError(400, msg, { type: 'bad-multipart' })

    bb.on('field', (name, value) => { if (name === 'folder') folder = value })
    bb.on('file', (name, file) => {
      if (name !== 'data' || gotFile) {
        file.resume()
        return
      }
      gotFile = true
      file.on('error', (e) => data.destroy(e))
      file.pipe(data)
      resolve({ data, folder: folderP, raw: false })
    })
    bb.on('error', (e) => {
      const err = bad(`the multipart body is malformed or truncated (${(e as Error).message})`)
      data.destroy(err)
      fail(err)
      reject(err)
    })
    bb.on('close', () => {
      if (!gotFile) reject(new HttpError(422, 'the multipart body has no file field "data"', { type: 'missing-data' }))
      finish(folder)
    })
    source.on('error', (e) => bb.destroy(e))
    source.pipe(bb)
  })
}
