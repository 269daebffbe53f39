// The admin surface (deploy.md §3): a Hono app served on the unix socket ADMIN_SOCKET (mode 0600,
// a stale socket replaced) and, only with TLS and ADMIN_TOKEN, on ADMIN_PORT. Never on the callers'
// port; the callers' token does not open it. Errors are problem+json.
import { createAdaptorServer } from '@hono/node-server'
import { lstat, rm } from 'node:fs/promises'
import { createServer as createHttpsServer } from 'node:https'
import { connect, type Server as NetServer } from 'node:net'
import type { TlsListener } from '../tls'
import { Hono } from 'hono'
import * as v from 'valibot'
import { adminSocketPath } from '../../shared/contract/config'
import { HttpError, isHttpError, problemResponse } from '../../shared/contract/http-error'
import { readTextLimited } from '../../shared/http/json'
import { ConfigError } from '../config'
import { errorSummary } from '../app'
import { callerTokenMatches } from '../middleware/caller-token'
import type { LoadedFunction } from '../registry'
import type { DeployContext } from './context'
import type { Deployer } from './deployments'
import { functionsView } from './functions-view'
import { listenPrivately } from './private-socket'
import { verifyChain } from './journal'
import { bestEffort } from './best-effort'
import { Refused } from './release'
import { listenError } from '../listen-error'
import { readParts } from './multipart'

const RollbackBody = v.object({ version: v.optional(v.union([v.pipe(v.number(), v.integer(), v.minValue(1)), v.literal('factory')])) })

/** The largest rollback body read: `{"version": …}` needs a few bytes. */
const ROLLBACK_BODY_MAX_BYTES = 4096

/** The admin app; `token` set: every request needs `Authorization: Bearer <ADMIN_TOKEN>`. */
export function createAdminApp(ctx: DeployContext, deployer: Deployer, running: () => LoadedFunction[], token?: string) {
  const { env } = ctx
  const app = new Hono()
  if (token) {
    app.use(async (c, next) => {
      if (!callerTokenMatches(c.req.header('authorization'), token)) {
        throw new HttpError(401, 'the admin surface needs Authorization: Bearer <ADMIN_TOKEN>', { type: 'admin-token', headers: { 'www-authenticate': 'Bearer' } })
      }
      await next()
    })
  }
  app.use(async (_c, next) => {
    if (!ctx.keys.length) throw new Refused('deploys are off on this device: RELEASE_KEYS is not set', 503)
    await next()
  })
  app.get('/admin/functions', async (c) => c.json({ functions: await functionsView(ctx, running()) }))
  app.post('/admin/deployments', async (c) => {
    // A body refused before it is a deployment (too large, not multipart, malformed) is journaled too.
    const parts = await readParts(c.req.raw, env.config.ADMIN_BODY_MAX_BYTES).catch(async (e: unknown) => {
      if (isHttpError(e)) await bestEffort(env, 'the journal append', () => ctx.journal.append({ event: 'rejected', reason: `${e.status}: ${e.message}` }))
      throw e
    })
    const dep = await deployer.submit(parts)
    return c.json({ id: dep.id, state: dep.state }, 202, { location: `/admin/deployments/${dep.id}` })
  })
  app.get('/admin/deployments/:id', (c) => {
    const dep = deployer.get(c.req.param('id'))
    if (!dep) throw new HttpError(404, `no deployment ${c.req.param('id')} (this process keeps the last 100)`)
    return c.json(dep)
  })
  app.post('/admin/functions/:name/rollback', async (c) => {
    const text = await readTextLimited(c.req.raw, ROLLBACK_BODY_MAX_BYTES)
    let body: unknown = {}
    try {
      body = text.trim() ? JSON.parse(text) : {}
    } catch {
      throw new HttpError(400, 'the body is not JSON')
    }
    const parsed = v.safeParse(RollbackBody, body)
    if (!parsed.success) throw new HttpError(422, 'version: expected a release version (a whole number) or "factory"')
    const p = await deployer.rollback(c.req.param('name'), parsed.output.version)
    return c.json({ name: c.req.param('name'), ...p })
  })
  app.get('/admin/journal', async (c) => {
    const text = await ctx.journal.read()
    if (c.req.query('verify') !== undefined && c.req.query('verify') !== '0') return c.json(verifyChain(text))
    return c.body(text, 200, { 'content-type': 'application/x-ndjson' })
  })
  app.notFound((c) => problemResponse(404, { type: 'about:blank', title: 'Not Found', status: 404, detail: `no admin route ${c.req.method} ${c.req.path}` }))
  app.onError((err) => {
    if (isHttpError(err)) return err.getResponse()
    env.log.error({ err: errorSummary(err) }, 'admin: unhandled error')
    return problemResponse(500, { type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'an unexpected error occurred; see the log' })
  })
  return app
}

/** True when something answers on the unix socket at `path`. */
const socketAnswers = (path: string) => new Promise<boolean>((ok) => {
  const s = connect(path)
  s.once('connect', () => { s.destroy(); ok(true) })
  s.once('error', () => ok(false))
})

/** The admin listeners; `close()` stops them and removes the socket file. */
/** `app` serves the unix socket; `tokenApp` (the same routes behind ADMIN_TOKEN) serves ADMIN_PORT. */
export async function listenAdmin(ctx: DeployContext, app: Hono, tokenApp?: Hono, tls?: TlsListener): Promise<{ socket: string; port?: number; close(): Promise<void> }> {
  const cfg = ctx.env.config
  const socket = adminSocketPath(cfg)
  const found = await lstat(socket).catch(() => undefined)
  if (found) {
    // Only a socket is replaced (a stale one); any other file there is the operator's, never removed.
    if (!found.isSocket()) throw new ConfigError('ADMIN_SOCKET', `${socket} exists and is not a socket; it is left alone: name a free path`)
    if (await socketAnswers(socket)) throw new Error(`ADMIN_SOCKET: ${socket} is in use by another process`)
    await rm(socket, { force: true })
  }
  const servers: NetServer[] = []
  const listen = (server: NetServer, ...args: unknown[]) => new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(...(args as []), () => { server.off('error', fail); ok() })
  })
  const unix = createAdaptorServer({ fetch: app.fetch }) as unknown as NetServer
  await listenPrivately(unix, socket)
  servers.push(unix)
  let port: number | undefined
  if (cfg.ADMIN_PORT !== undefined && tokenApp) {
    if (!tls) throw new Error('ADMIN_PORT: needs TLS_CERT_FILE and TLS_KEY_FILE')
    // The callers' certificates (runtime/tls.ts), kept current on SIGHUP and file change; never client-certificate auth here.
    const https = createAdaptorServer({ fetch: tokenApp.fetch, createServer: createHttpsServer,
      serverOptions: { ...tls.options, requestCert: false, rejectUnauthorized: false } }) as unknown as NetServer
    tls.attach(https as unknown as import('node:tls').Server)
    await listen(https, cfg.ADMIN_PORT, cfg.HOST).catch(async (e) => {
      // The start stops: the socket this loader just put in place goes with it.
      unix.close()
      await rm(socket, { force: true }).catch(() => {})
      throw listenError(e, cfg.HOST, cfg.ADMIN_PORT!, 'ADMIN_PORT')
    })
    servers.push(https)
    port = cfg.ADMIN_PORT
  }
  ctx.env.log.info({ socket, port }, 'admin surface listening')
  return {
    socket, port,
    async close() {
      await Promise.all(servers.map((s) => new Promise<void>((ok) => {
        s.close(() => ok())
        ;(s as unknown as { closeAllConnections?(): void }).closeAllConnections?.()
      })))
      await rm(socket, { force: true })
    },
  }
}
