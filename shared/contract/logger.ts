// The logger shape functions see (a subset of pino's), so functions never import pino.

type LogFn = (obj: object | string, msg?: string) => void

/** Structured logger handed to functions as `env.log`. */
export interface Logger {
  trace: LogFn
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  fatal: LogFn
  child(bindings: Record<string, unknown>): Logger
}
