// The unlock job's durable state in `env.state` (survives restarts and redeploys).
import type { Storage } from 'unstorage'
import * as v from 'valibot'

export const UNLOCK_KEY = 'unlock:status'

export type UnlockPhase = 'idle' | 'authenticating' | 'fetching_key' | 'decrypting' | 'loading' | 'ready' | 'error'

/** What GET /unlock/status answers. */
export interface UnlockStatus {
  state: UnlockPhase
  progress: { bytesDone: number; bytesTotal: number }
  images: string[]
  error: string | null
  updatedAt: string
  /** Names, sizes and mtimes of the archives of the last run: a change runs again. */
  archives?: string
}

/** The phases in which a job is still running. */
export const RUNNING: readonly UnlockPhase[] = Object.freeze(['authenticating', 'fetching_key', 'decrypting', 'loading'])

export const idle = (): UnlockStatus => ({ state: 'idle', progress: { bytesDone: 0, bytesTotal: 0 }, images: [], error: null, updatedAt: new Date().toISOString() })

/** The key under which the running job is registered in `env.inflight`. */
export const UNLOCK_JOB = 'unlock'

/**
 * The stored status; anything that is not one (a missing or unreadable file) reads as `idle`.
 * Given `inflight`, a running phase that no job of this process runs reads as `error`: the job
 * ended without recording its end (the state could not be written, e.g. a full disk).
 */
export async function readUnlock(state: Storage, inflight?: { has(key: string): boolean }): Promise<UnlockStatus> {
  // Asked before and after the read: a job that ends (or starts) while the file is read is not taken for a lost one.
  const before = inflight?.has(UNLOCK_JOB)
  const s = await state.getItem<UnlockStatus>(UNLOCK_KEY)
  if (s === null || typeof s !== 'object' || typeof s.state !== 'string') return idle()
  if (inflight && RUNNING.includes(s.state) && !before && !inflight.has(UNLOCK_JOB)) {
    return { ...s, state: 'error', error: 'the unlock job ended but its result could not be recorded (the state under CACHE_DIR could not be written): free space and POST /unlock again' }
  }
  return s
}

export async function writeUnlock(state: Storage, s: UnlockStatus): Promise<UnlockStatus> {
  const next = { ...s, updatedAt: new Date().toISOString() }
  await state.setItem(UNLOCK_KEY, next as never)
  return next
}

/** What GET /unlock/status answers, as a schema for `/openapi.json`. */
export const UnlockStatusAnswer = v.object({
  state: v.picklist(['idle', 'authenticating', 'fetching_key', 'decrypting', 'loading', 'ready', 'error']),
  progress: v.object({ bytesDone: v.number(), bytesTotal: v.number() }),
  images: v.array(v.string()),
  error: v.nullable(v.string()),
  updatedAt: v.string(),
})

/** The public view: the internal archive signature left out. */
export const publicView = ({ archives: _a, ...s }: UnlockStatus): v.InferOutput<typeof UnlockStatusAnswer> => s
