// The caller's address as node-server reports it (the socket's remote address).
import type { Context } from 'hono'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** What @hono/node-server puts in `c.env`. */
export type NodeBindings = { incoming?: IncomingMessage; outgoing?: ServerResponse }

/** The remote address of the request's socket, or `local` for in-process requests. */
export const clientAddress = (c: Context) => (c.env as NodeBindings | undefined)?.incoming?.socket?.remoteAddress ?? 'local'
