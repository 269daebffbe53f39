// Parses the configuration at start: environment, SALTS_FILE, baked salts; a bad value names its variable.
import * as v from 'valibot'
import { ConfigSchema, type Config } from '../shared/contract/config'

/** A configuration value that stops the start; its message names the variable. */
export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

/** Parses `KEY=VALUE` lines (comments with `#`, blank lines ignored). */
export function parseKeyValueLines(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim().replace(/^(['"])(.*)\1$/, '$2')
  }
  return out
}

const SALT_KEYS = ['HARDWARE_SALT', 'API_KEY_SALT', 'RESOURCE_KEY_SALT'] as const

/**
 * Parses the configuration. Salts come from the environment first, then `saltsFile`
 * (the parsed SALTS_FILE), then the values baked in at build time. Throws ConfigError
 * naming the first bad variable; the message never repeats a secret value.
 */
export function parseConfig(
  vars: Record<string, string | undefined>,
  saltsFile: Record<string, string> = {},
  baked: Record<string, string> = {},
): Config {
  const input: Record<string, string | undefined> = {}
  for (const key of Object.keys(ConfigSchema.pipe[0].entries)) input[key] = vars[key]
  for (const key of SALT_KEYS) input[key] = vars[key] || saltsFile[key] || baked[key] || undefined
  const result = v.safeParse(ConfigSchema, input)
  if (result.success) return result.output
  const issue = result.issues[0]
  const variable = v.getDotPath(issue) ?? 'configuration'
  const secret = /SALT|SECRET|TOKEN|KEY/.test(variable)
  const got = !secret && typeof issue.input === 'string' ? ` (got ${JSON.stringify(issue.input)})` : ''
  throw new ConfigError(variable, issue.message + got)
}
