// One upload per folder/filename at a time on this device: a second one answers 409 while the first runs.
import type { Env } from '../../shared/contract/function'
import { HttpError } from '../../shared/contract/http-error'

/**
 * Runs `work` as the only upload of `folder/filename`; 409 when one is already running.
 * Two interleaved uploads would leave one's big part beside the other's small part and manifest.
 */
export function exclusive<T>(env: Env, folder: string, filename: string, work: () => Promise<T>): Promise<T> {
  const key = `upload:${folder}/${filename}`
  // No await between the check and `run`: two requests cannot both pass.
  if (env.inflight.has(key)) {
    throw new HttpError(409, `an upload of ${folder}/${filename} is already running on this device; try again when it has ended`, { type: 'upload-in-progress' })
  }
  return env.inflight.run(key, work)
}
