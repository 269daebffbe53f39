// A strict reader of the YAML that cdn.yaml needs: one flat mapping of scalar values.
// It accepts what an operator writes by hand (comments, single/double quotes, `---`/`...`
// markers, `%YAML 1.2` directives, CRLF, a BOM) and refuses every other YAML construct with the
// line number, so it never reads a document differently from a full YAML 1.2 parser
// (test/unit/flat-yaml.test.ts checks that against the `yaml` package). It never quotes the
// line it refuses: cdn.yaml holds secrets.

/** A refused document: `line` is 1-based, `reason` never contains the document's text. */
export class FlatYamlError extends Error {
  constructor(readonly line: number, readonly reason: string) {
    super(`line ${line}: ${reason}`)
  }
}

type Scalar = string | number | boolean | null

const KEY = /^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:(?=[ \t]|$)/
const ESCAPES: Readonly<Record<string, string>> = Object.freeze({
  '0': '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b',
  ' ': ' ', '"': '"', '/': '/', '\\': '\\', N: '\x85', _: '\xa0', L: '\u2028', P: '\u2029',
})
const HEX_LEN: Readonly<Record<string, number>> = Object.freeze({ x: 2, u: 4, U: 8 })

/** The core schema's resolution of a plain scalar (YAML 1.2 §10.3.2). */
function plain(s: string): Scalar {
  if (/^(~|null|Null|NULL|)$/.test(s)) return null
  if (/^(true|True|TRUE)$/.test(s)) return true
  if (/^(false|False|FALSE)$/.test(s)) return false
  if (/^[-+]?[0-9]+$/.test(s)) return Number(s)
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8)
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16)
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(s)) return Number(s)
  if (/^[-+]?\.(inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity
  if (/^\.(nan|NaN|NAN)$/.test(s)) return NaN
  return s
}

/** A plain value without its comment: from a `#` at the start or after a blank (one linear scan, no regex). */
function stripComment(s: string): string {
  for (let i = s.indexOf('#'); i !== -1; i = s.indexOf('#', i + 1)) {
    if (i === 0 || s[i - 1] === ' ' || s[i - 1] === '\t') return s.slice(0, i)
  }
  return s
}

/** Without trailing spaces and tabs (the only blanks YAML trims; String#trimEnd would trim more). */
function trimBlanks(s: string): string {
  let end = s.length
  while (end > 0 && (s[end - 1] === ' ' || s[end - 1] === '\t')) end--
  return s.slice(0, end)
}

/** Reads a quoted scalar starting at `rest[0]`; returns it and what follows the closing quote. */
function quoted(rest: string, line: number): [string, string] {
  const q = rest[0]
  let out = ''
  for (let i = 1; i < rest.length; i++) {
    const c = rest[i]
    if (q === "'" && c === "'") {
      if (rest[i + 1] === "'") { out += "'"; i++; continue }
      return [out, rest.slice(i + 1)]
    }
    if (q === '"' && c === '"') return [out, rest.slice(i + 1)]
    if (q === '"' && c === '\\') {
      const e = rest[++i]
      if (e !== undefined && e in ESCAPES) { out += ESCAPES[e]; continue }
      const n = e === undefined ? undefined : HEX_LEN[e]
      const hex = n === undefined ? '' : rest.slice(i + 1, i + 1 + n)
      if (n === undefined || !new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) throw new FlatYamlError(line, 'a double-quoted value has an invalid escape')
      const cp = parseInt(hex, 16)
      if (cp > 0x10ffff) throw new FlatYamlError(line, 'a double-quoted value has an invalid escape')
      out += String.fromCodePoint(cp)
      i += n
      continue
    }
    out += c
  }
  throw new FlatYamlError(line, 'a quoted value is not closed on its line (multi-line values are not supported)')
}

/**
 * Parses a single YAML document that is one flat mapping of scalars (or empty: `{}`).
 * Throws FlatYamlError for anything else: nesting, flow or block collections, block scalars,
 * anchors, aliases, tags, duplicate keys, several documents.
 */
export function parseFlatYaml(source: string): Record<string, Scalar> {
  const out: Record<string, Scalar> = {}
  const lines = source.replace(/^\uFEFF/, '').split(/\r?\n/)
  let started = false // `---` seen or content seen
  let ended = false // `...` seen
  let content = false
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1
    const text = lines[i]
    if (/^[ \t]*(#.*)?$/.test(text)) continue
    if (/^%/.test(text)) {
      if (started && !ended) throw new FlatYamlError(n, 'a directive inside the document')
      if (!/^%YAML[ \t]/.test(text)) throw new FlatYamlError(n, 'only the %YAML directive is supported')
      // Another version would read values differently (YAML 1.1: `yes` is true): only 1.2.
      if (!/^%YAML[ \t]+1\.2[ \t]*(#.*)?$/.test(text)) throw new FlatYamlError(n, 'only %YAML 1.2 is supported')
      ended = false
      continue
    }
    if (/^---([ \t].*)?$/.test(text)) {
      if (content) throw new FlatYamlError(n, 'cdn.yaml must hold one document')
      if (!/^---[ \t]*(#.*)?$/.test(text)) throw new FlatYamlError(n, 'content on the document start line is not supported')
      started = true
      continue
    }
    if (/^\.\.\.([ \t].*)?$/.test(text)) {
      if (!/^\.\.\.[ \t]*(#.*)?$/.test(text)) throw new FlatYamlError(n, 'content after the document end marker')
      ended = true
      continue
    }
    if (ended) throw new FlatYamlError(n, 'content after the document end marker')
    if (/^[ \t]/.test(text)) throw new FlatYamlError(n, 'indented lines (nested or continued values) are not supported')
    const key = KEY.exec(text)
    if (!key) throw new FlatYamlError(n, 'expected "key: value" with a plain key')
    if (Object.hasOwn(out, key[1])) throw new FlatYamlError(n, `the key ${key[1]} appears twice`)
    started = true
    content = true
    let rest = text.slice(key[0].length).replace(/^[ \t]+/, '')
    let value: Scalar
    if (rest[0] === '"' || rest[0] === "'") {
      ;[value, rest] = quoted(rest, n)
      if (!/^([ \t]+(#.*)?)?$/.test(rest)) throw new FlatYamlError(n, 'unexpected text after a quoted value')
    } else {
      if (/^[[\]{}&*!|>%@`,]|^[-?:]([ \t]|$)/.test(rest)) throw new FlatYamlError(n, 'only scalar values are supported (no collections, block scalars, anchors, aliases or tags)')
      const v = trimBlanks(stripComment(rest))
      if (/:([ \t]|$)/.test(v) || /[ \t]#/.test(v)) throw new FlatYamlError(n, 'a plain value contains ": "; quote it')
      value = plain(v)
    }
    out[key[1]] = value
  }
  return out
}
