// The end-to-end stack: development origin, moto (behind a proxy that can cut a body), built runtime.
import { serve } from '@hono/node-server'
import { request as httpRequest, createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { rmSync } from 'node:fs'
import { AwsClient } from 'aws4fetch'
import { aesKey } from '../../shared/crypto/blob'
import { resourceKey } from '../../shared/crypto/keys'
import { createOrigin, type OriginOptions } from '../origin/origin'
import { startMoto, type Keys, type Moto } from './moto'
import { startLoader, type LoaderProcess, type StartOptions } from './spawn'
import { SALTS } from './vectors'
import { removeLater } from './tmp'
import { rm } from 'node:fs/promises'

export const JWT_SECRET = 'jwt-secret-for-tests-0123456789'
export const RESOURCE_AES = aesKey(resourceKey(SALTS.RESOURCE_KEY_SALT))

/** Faults the CDN proxy injects into the next matching request. */
export interface ProxyFaults {
  /** Cut the body of the next GET of a `.big` object after this many bytes. */
  cutNextBigGetAfter?: number
  /** Send this many bytes of the next `.big` GET, then hold the connection open without more. */
  stallNextBigGetAfter?: number
  /** Send this many bytes of every `.big` GET (200 or 206), then hold the connection open without more. */
  stallEveryBigGetAfter?: number
  /** Cut the connection of the next PUT after this many bytes of its body (nothing reaches moto). */
  cutNextPutAfter?: number
  /** Answer the next PUT 403 at once, before reading its body (as a CDN checking the signature first does). */
  refuseNextPut?: boolean
  /** Range headers seen on `.big` GETs. */
  ranges: (string | undefined)[]
  /** `.big` PUTs whose headers reached the proxy (the upload to the CDN has begun). */
  bigPuts?: number
}

/** A proxy in front of moto that keeps the Host header (it is signed) and can cut a body. */
async function startProxy(target: string, faults: ProxyFaults): Promise<{ url: string; server: Server }> {
  const t = new URL(target)
  const server = createServer((req, res) => {
    const isBigGet = req.method === 'GET' && /\.big$/.test(req.url ?? '')
    if (req.method === 'PUT' && faults.cutNextPutAfter !== undefined) {
      const cutPut = faults.cutNextPutAfter
      faults.cutNextPutAfter = undefined
      let got = 0
      req.on('data', (c: Buffer) => { if ((got += c.length) >= cutPut) req.socket.destroy() })
      return
    }
    if (req.method === 'PUT' && faults.refuseNextPut) {
      faults.refuseNextPut = false
      res.writeHead(403, { 'content-type': 'application/xml' })
      res.end('<Error><Code>SignatureDoesNotMatch</Code></Error>')
      return
    }
    if (isBigGet) faults.ranges.push(req.headers.range)
    if (req.method === 'PUT' && /\.big$/.test(req.url ?? '')) faults.bigPuts = (faults.bigPuts ?? 0) + 1
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers)
      const every = isBigGet && (ur.statusCode === 200 || ur.statusCode === 206) ? faults.stallEveryBigGetAfter : undefined
      const stall = every ?? (isBigGet && ur.statusCode === 200 ? faults.stallNextBigGetAfter : undefined)
      if (stall !== undefined) {
        if (every === undefined) faults.stallNextBigGetAfter = undefined
        let sent = 0
        ur.on('data', (c: Buffer) => {
          if (sent >= stall) return ur.pause()
          const part = c.subarray(0, stall - sent)
          sent += part.length
          res.write(part)
        })
        return
      }
      const cut = isBigGet && ur.statusCode === 200 ? faults.cutNextBigGetAfter : undefined
      if (cut === undefined) return ur.pipe(res)
      faults.cutNextBigGetAfter = undefined
      let sent = 0
      ur.on('data', (c: Buffer) => {
        if (sent >= cut) return
        const part = c.subarray(0, cut - sent)
        sent += part.length
        res.write(part)
        if (sent >= cut) {
          ur.destroy()
          res.socket?.destroy()
        }
      })
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

export interface Stack {
  origin: ReturnType<typeof createOrigin>['state']
  originUrl: string
  moto: Moto
  cdnUrl: string
  faults: ProxyFaults
  loader: LoaderProcess
  /** Writes cdn.yaml for the given keys (defaults: the real ones). */
  setCdnYaml(over?: Partial<{ downloader: Keys; uploader: Keys; host: string }>): void
  /** An S3 client signing with the uploader keys, straight to moto. */
  s3: AwsClient
  /** Restarts the loader on the same CACHE_DIR; `opts` as startLoader's (e.g. nodeArgs: ['--cpu-prof']). */
  restartLoader(vars?: Record<string, string>, opts?: StartOptions): Promise<void>
  /** Stops the Resource API (origin), the CDN (moto) and its proxy, leaving the loader running. */
  stopUpstreams(): Promise<void>
  stop(): Promise<void>
}

/** Starts everything; `users` are email → [password, role]. */
export async function startStack(users: Record<string, [string, string | number]>, loaderVars: Record<string, string> = {}, salts: typeof SALTS = SALTS,
  originOptions: Partial<OriginOptions> = {}): Promise<Stack> {
  const { app, state } = createOrigin({ jwtSecret: JWT_SECRET, salts, ...originOptions })
  for (const [email, [password, role]] of Object.entries(users)) state.users.set(email, { password, role: role as never })
  const originServer = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }) as Server
  await new Promise<void>((r) => (originServer.listening ? r() : originServer.once('listening', r)))
  const originUrl = `http://127.0.0.1:${(originServer.address() as AddressInfo).port}`
  const moto = await startMoto(['models', 'other-folder'])
  const faults: ProxyFaults = { ranges: [] }
  const proxy = await startProxy(moto.url, faults)
  const setCdnYaml: Stack['setCdnYaml'] = (over = {}) => {
    const d = over.downloader ?? moto.downloader
    const u = over.uploader ?? moto.uploader
    state.files.set('cdn.yaml', Buffer.from([
      `host: ${over.host ?? proxy.url}`, 'region: us-east-1',
      `downloader_access_key: ${d.accessKeyId}`, `downloader_access_secret: ${d.secretAccessKey}`,
      `uploader_access_key: ${u.accessKeyId}`, `uploader_access_secret: ${u.secretAccessKey}`, '',
    ].join('\n')))
  }
  setCdnYaml()
  const vars = { ...salts, RESOURCE_API_URL: originUrl, JWT_SECRET, LOGIN_RATE_PER_MINUTE: '1000', API_TIMEOUT_MS: '5000', CDN_TIMEOUT_MS: '5000', ...loaderVars }
  // Every CACHE_DIR the loader used (restarts may name new ones): removed by stop().
  const cacheDirs = new Set<string>()
  const stack: Stack = {
    origin: state, originUrl, moto, cdnUrl: proxy.url, faults, setCdnYaml,
    loader: await startLoader(vars).then((l) => (cacheDirs.add(l.cacheDir), l)),
    s3: new AwsClient({ ...moto.uploader, service: 's3', region: 'us-east-1', retries: 0 }),
    async restartLoader(more = {}, opts = {}) {
      await stack.loader.stop()
      stack.loader = await startLoader({ ...vars, CACHE_DIR: stack.loader.cacheDir, ...more }, opts)
      cacheDirs.add(stack.loader.cacheDir)
      removeLater(stack.loader.cacheDir)
    },
    async stopUpstreams() {
      await moto.stop()
      proxy.server.closeAllConnections()
      proxy.server.close()
      originServer.closeAllConnections()
      await new Promise((r) => originServer.close(r))
    },
    async stop() {
      await stack.loader.stop('SIGKILL')
      rmSync(stack.loader.cacheDir, { recursive: true, force: true })
      await moto.stop()
      proxy.server.closeAllConnections()
      proxy.server.close()
      originServer.closeAllConnections()
      originServer.close()
      await Promise.all([...cacheDirs].map((d) => rm(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })))
    },
  }
  return stack
}

/** POSTs JSON to the loader. */
export const post = (base: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) })
