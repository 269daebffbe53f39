// Docker Engine API client for `POST /images/load` over a unix socket, TCP or TCP with TLS (no CLI, no shell).
import type { ClientRequest } from 'node:http'
import type { Readable } from 'node:stream'
import type { DockerTls } from '../../shared/contract/docker-tls'
import { nodeRequest, readBodyText } from '../../shared/upstream/node-request'

/** Where DOCKER_HOST points: a socket path or a base URL (https when TLS material is given, as the CLI does). */
export function engineTarget(dockerHost: string, tls?: DockerTls): { socketPath?: string; base: string } {
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length), base: 'http://docker' }
  return { base: dockerHost.replace(/^tcp:\/\//, tls ? 'https://' : 'http://').replace(/\/+$/, '') }
}

/** An engine failure with the engine's own message. */
export class EngineError extends Error {
  override name = 'EngineError'
}

/**
 * Parses an `/images/load` answer: dockerd's JSON lines (errors inside a 200) or podman's
 * `Loaded image: a,b`; accepts `Loaded image ID: sha256:…`. Returns the image names (at least one:
 * an answer that names none is an EngineError).
 */
export function parseLoadAnswer(status: number, text: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean)
  const objects = lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown> } catch { return { stream: l } } })
  if (status >= 400) {
    const msg = objects.map((o) => o.message ?? o.error).find((m) => typeof m === 'string')
    throw new EngineError(String(msg ?? (text.trim() || `HTTP ${status}`)))
  }
  const images: string[] = []
  for (const o of objects) {
    const err = o.error ?? (o.errorDetail as { message?: string } | undefined)?.message
    if (typeof err === 'string') throw new EngineError(err)
    const stream = typeof o.stream === 'string' ? o.stream : ''
    const m = /Loaded image(?: ID)?:\s*(.+)/.exec(stream)
    if (m) images.push(...m[1].split(',').map((s) => s.trim()).filter(Boolean))
  }
  // A success names what it loaded: an answer that names nothing (empty, garbage, a proxy's "OK") is no load.
  if (images.length === 0) {
    const shown = text.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 200)
    throw new EngineError(`it answered ${status} without naming a loaded image${shown ? ` (${shown})` : ' (an empty answer)'}`)
  }
  return images
}

/**
 * Streams a docker-archive (tar) of `bytes` bytes into the engine and returns the loaded image
 * names. `timeoutMs` bounds the wait for the answer once the body is sent, and any stall.
 */
export async function loadImages(dockerHost: string, body: Readable, bytes: number, timeoutMs: number, tls?: DockerTls): Promise<string[]> {
  const t = engineTarget(dockerHost, tls)
  // Over TCP the Host header stays host:port: node:https checks the engine's certificate against it.
  const res = await nodeRequest({
    method: 'POST', url: `${t.base}/images/load?quiet=1`, socketPath: t.socketPath, body, timeoutMs, tls,
    headers: { 'content-type': 'application/x-tar', 'content-length': String(bytes), ...(t.socketPath ? { host: 'docker' } : {}) },
  })
  try {
    return parseLoadAnswer(res.statusCode ?? 0, await readBodyText(res, 4 << 20))
  } finally {
    // An engine that answered before it took the whole archive (a refusal): the rest is not sent and
    // the connection goes now, not after DOCKER_TIMEOUT_MS of a body nobody reads.
    const req = (res as typeof res & { req?: ClientRequest }).req
    if (req && !req.writableFinished) req.destroy()
  }
}

/**
 * True when the engine still has the image `name` (`GET /images/{name}/json`: 200), false on 404;
 * throws when the engine cannot be asked or answers anything else. `tls` as for loadImages.
 */
export async function hasImage(dockerHost: string, name: string, timeoutMs: number, tls?: DockerTls): Promise<boolean> {
  const t = engineTarget(dockerHost, tls)
  // The name keeps its "/" (the API route takes it as is); every segment is escaped.
  const path = name.split('/').map(encodeURIComponent).join('/')
  // Over TCP the Host header stays host:port, as for the load (the engine's certificate is checked against it).
  const res = await nodeRequest({ method: 'GET', url: `${t.base}/images/${path}/json`, socketPath: t.socketPath, timeoutMs, tls,
    headers: t.socketPath ? { host: 'docker' } : {} })
  const text = await readBodyText(res, 1 << 20)
  if (res.statusCode === 200) return true
  if (res.statusCode === 404) return false
  throw new EngineError(`the engine answered ${res.statusCode} when asked for ${name}: ${text.slice(0, 200)}`)
}
