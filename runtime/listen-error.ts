// A listener that cannot bind is a configuration problem: the start stops with one line naming the
// variable (HOST for an address that does not resolve or is not this machine's, the port's variable
// for a port in use or not allowed), like a malformed value (architecture.md, configuration).
import { ConfigError } from './config'

/** `e` from a server's 'error' while listening on `host`:`port`, named after the variable at fault. */
export function listenError(e: unknown, host: string, port: number, portVariable: 'PORT' | 'ADMIN_PORT'): unknown {
  const code = (e as NodeJS.ErrnoException)?.code
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME') return new ConfigError('HOST', `${host} does not resolve to an address (${code})`)
  if (code === 'EADDRNOTAVAIL') return new ConfigError('HOST', `${host} is not an address of this machine (${code})`)
  if (code === 'EADDRINUSE') return new ConfigError(portVariable, `port ${port} on ${host} is in use by another process (${code})`)
  if (code === 'EACCES') return new ConfigError(portVariable, `port ${port} on ${host} may not be bound by this user (${code}: ports below 1024 need a privilege)`)
  return e
}
