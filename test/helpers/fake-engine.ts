// A fake Docker engine on a unix socket, or on TCP with TLS verified both ways (dockerd --tlsverify):
// answers /images/load like dockerd or podman, or fails on demand.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { tempDir } from './tmp'

export type EngineMode = 'podman' | 'dockerd' | 'podman-error' | 'dockerd-error' | 'sink'

export interface FakeEngine {
  socket: string
  /** `tcp://127.0.0.1:<port>` when started with TLS. */
  tcp?: string
  mode: EngineMode
  /** SHA-256 and size of every body received. */
  received: { sha256: string; bytes: number; contentType?: string }[]
  /** Delay before answering, ms (to observe the `loading` phase). */
  delayMs: number
  /** Images the engine holds (what it loaded); `GET /images/{name}/json` answers 200 for these, else 404. */
  images: Set<string>
  close(): Promise<void>
}

/** With `tls` (PEM texts), the engine listens on loopback TCP and requires a client certificate signed by `tls.ca`. */
export async function startFakeEngine(mode: EngineMode = 'podman', images = ['localhost/demo:1'], tls?: { cert: string; key: string; ca: string }): Promise<FakeEngine> {
  const socket = join(tempDir('engine-'), 'docker.sock')
  const engine: FakeEngine = { socket, mode, received: [], delayMs: 0, images: new Set(), close: async () => {} }
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const inspect = req.method === 'GET' ? /^\/images\/(.+)\/json$/.exec(req.url ?? '') : null
    if (inspect) {
      const name = inspect[1].split('/').map(decodeURIComponent).join('/')
      if (engine.images.has(name)) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Id: 'sha256:0', RepoTags: [name] }))
      else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `no such image: ${name}` }))
      return
    }
    if (req.method !== 'POST' || !req.url?.startsWith('/images/load')) {
      res.writeHead(404).end('{"message":"not found"}')
      return
    }
    const hash = createHash('sha256')
    let bytes = 0
    const sink = engine.mode === 'sink'
    // An upload the loader aborts (its archive failed) is not an error of the engine's.
    const whole = await new Promise<boolean>((ok) => {
      req.on('data', (c: Buffer) => { if (!sink) hash.update(c); bytes += c.length })
      req.once('end', () => ok(true))
      req.once('error', () => ok(false))
    })
    if (!whole) return
    engine.received.push({ sha256: hash.digest('hex'), bytes, contentType: req.headers['content-type'] })
    if (engine.delayMs) await new Promise((r) => setTimeout(r, engine.delayMs))
    if (engine.mode === 'podman' || engine.mode === 'dockerd') for (const i of images) engine.images.add(i)
    if (engine.mode === 'sink') engine.images.add('sha256:' + '0'.repeat(64))
    switch (engine.mode) {
      case 'podman': res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ stream: `Loaded image: ${images.join(',')}` }) + '\n'); break
      case 'dockerd': res.writeHead(200, { 'content-type': 'application/json' }).end(images.map((i) => JSON.stringify({ stream: `Loaded image: ${i}\n` })).join('\r\n')); break
      case 'podman-error': res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ cause: 'x', message: 'failed to load image: payload does not match any of the supported image formats', response: 500 })); break
      case 'dockerd-error': res.writeHead(200).end(JSON.stringify({ errorDetail: { message: 'invalid tar header' }, error: 'invalid tar header' })); break
      case 'sink': res.writeHead(200).end(JSON.stringify({ stream: 'Loaded image ID: sha256:' + '0'.repeat(64) })); break
    }
  }
  const server: Server = tls ? createHttpsServer({ ...tls, requestCert: true, rejectUnauthorized: true }, handler) : createServer(handler)
  if (tls) {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    engine.tcp = `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`
  } else {
    await new Promise<void>((r) => server.listen(socket, r))
  }
  engine.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()) })
  return engine
}
