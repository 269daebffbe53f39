// Bounds loads and uploads at once (MAX_CONCURRENT_TRANSFERS); past it 503 with Retry-After.
import type { MiddlewareHandler } from 'hono'
import { HttpError } from '../../shared/contract/http-error'
import type { NodeBindings } from './client-address'

/** The live count of transfers, shared by every app the runtime builds (it survives a reload). */
export interface TransferSlots { active: number }

/** Holds one slot per transfer until its response has gone out (node-server's `close`), not just until the handler returns. */
export const transferSlots = (slots: TransferSlots, max: number): MiddlewareHandler => async (c, next) => {
  if (slots.active >= max) {
    throw new HttpError(503, 'too many loads and uploads at once; try again shortly', { type: 'busy', headers: { 'retry-after': '1' } })
  }
  slots.active++
  let released = false
  const release = () => { if (!released) { released = true; slots.active-- } }
  const out = (c.env as NodeBindings | undefined)?.outgoing
  out?.once('close', release)
  try {
    await next()
  } finally {
    if (!out) release()
  }
}
