// The structured JSON logger (pino) with secret fields redacted; used by the runtime only.
import pino from 'pino'
import type { Logger } from '../../shared/contract/logger'

/** Field names whose values the logger always replaces with `[redacted]`. */
export const REDACT_KEYS = [
  'password', 'token', 'jwt', 'authorization', 'secret', 'salt', 'key', 'keyFragment',
  'downloader_access_secret', 'uploader_access_secret', 'downloader_access_key', 'uploader_access_key',
  'accessKeyId', 'secretAccessKey', 'cookie',
]

const paths = REDACT_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`])

/** Creates the root logger writing JSON lines to `destination` (stdout by default). */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({
    level,
    base: { service: 'loader' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  }, (destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: false })) as unknown as Logger
}
