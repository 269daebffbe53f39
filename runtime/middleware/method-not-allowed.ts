// 405 with Allow for a known path asked with another method (registered after the path's routes).
import type { Handler } from 'hono'
import { problemResponse } from '../../shared/contract/http-error'

/** Answers 405 naming the methods the path serves. */
export const methodNotAllowed = (allowed: string[]): Handler => (c) => {
  const allow = [...new Set(allowed)].join(', ')
  return problemResponse(405, { type: 'about:blank', title: 'Method Not Allowed', status: 405,
    detail: `${c.req.method} is not allowed here; use ${allow}`, requestId: c.get('requestId') }, { allow })
}
