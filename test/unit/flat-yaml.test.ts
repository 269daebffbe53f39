// The cdn.yaml reader: what an operator writes reads exactly as a full YAML 1.2 parser (the
// `yaml` package, a dev dependency only) reads it, and everything else is refused by line number.
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { FlatYamlError, parseFlatYaml } from '../../shared/upstream/flat-yaml'
import { parseCdnYaml } from '../../shared/upstream/cdn-config'

/** Documents an operator might write by hand. */
const ACCEPTED = [
  '',
  '# only a comment\n',
  'host: https://cdn.example.com\nregion: eu-west-1\n',
  [
    '%YAML 1.2',
    '---   # the CDN of the fleet',
    '# S3 endpoint, path-style',
    'host: "https://cdn.example.com:9000/"   # trailing slash is fine',
    "region: 'eu-central-1'",
    '',
    'downloader_access_key: AKIA#NOTACOMMENT',
    "downloader_access_secret: 'it''s: a \"secret\" # not a comment'",
    'uploader_access_key:    "UP\\u00e9\\x41\\t\\"q\\"\\\\"',
    'uploader_access_secret: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    '...',
    '# after the end marker',
  ].join('\n'),
  '\uFEFFhost: http://a\r\nregion: us-east-1\r\n',
  'a: ~\nb: null\nc:\nd: true\ne: False\nf: 12\ng: 0x1F\nh: 0o17\ni: 1.5e3\nj: .inf\nk: -.Inf\nl: "12"\nm: 007\n',
  'key:\tvalue\t# tabs as separation\n',
  'url: http://h/p?x=1&y=[2]\n',
  'dotted.key-name_1: v\n',
  '---\n',
  '---\nhost: http://a\n...\n',
  'x: a#b #c\n',
  'x: "a" \n',
  "x: ''\n",
]

/** Valid YAML the reader refuses (never misreads), and invalid YAML. */
const REFUSED: [string, number, RegExp][] = [
  ['host: http://a\n  continued\n', 2, /indented/],
  ['keys:\n  a: 1\n', 2, /indented/],
  ['host: {a: 1}\n', 1, /only scalar/],
  ['host: [a]\n', 1, /only scalar/],
  ['host: |\n  x\n', 1, /only scalar/],
  ['host: >-\n  x\n', 1, /only scalar/],
  ['host: &a x\nregion: *a\n', 1, /only scalar/],
  ['host: !!str x\n', 1, /only scalar/],
  ['host: - a\n', 1, /only scalar/],
  ['- a\n- b\n', 1, /key: value/],
  ['just a string\n', 1, /key: value/],
  ['host: a\nhost: b\n', 2, /twice/],
  ['host: "a\n b"\n', 1, /not closed/],
  ["host: 'a\n", 1, /not closed/],
  ['host: "a" b\n', 1, /after a quoted/],
  ['host: "\\q"\n', 1, /escape/],
  ['host: a: b\n', 1, /quote it/],
  ['host: a\n---\nhost: b\n', 2, /one document/],
  ['host: a\n...\nhost: b\n', 3, /after the document end/],
  ['%TAG ! tag:x,2000:\n---\nhost: a\n', 1, /%YAML/],
  ['%YAML 1.1\n---\nsecret: yes\n', 1, /only %YAML 1\.2/], // 1.1 would read `yes` as true
  ['%YAML 1.3\n---\nhost: a\n', 1, /only %YAML 1\.2/],
  ['--- host: a\n', 1, /document start/],
  ['"host": a\n', 1, /plain key/],
  ['? host\n: a\n', 1, /plain key/],
  ['\thost: a\n', 1, /indented/],
  ['host: http://a\rregion: x\r', 1, /quote it/], // a lone CR is no line break in YAML 1.2
]

describe('the cdn.yaml reader', () => {
  // A value of a million blanks once took a quadratic regex minutes: read in one linear pass now.
  it.each([
    ['blanks inside a value', `host: a${' '.repeat(1 << 20)}b\n`, { host: `a${' '.repeat(1 << 20)}b` }],
    ['trailing blanks', `host: a${' \t'.repeat(1 << 19)}\n`, { host: 'a' }],
    ['blanks before a comment', `host: a${' '.repeat(1 << 20)}# c${' '.repeat(1 << 10)}\n`, { host: 'a' }],
    ['blanks then text that is no comment', `host: a${' '.repeat(1 << 20)}x#y\n`, { host: `a${' '.repeat(1 << 20)}x#y` }],
  ])('reads a 1 MiB line of %s as the yaml package does', (_what, doc, expected) => {
    expect(parseFlatYaml(doc)).toEqual(expected)
    expect(parse(doc)).toEqual(expected)
  })

  it.each(ACCEPTED.map((d, i) => [i, d]))('reads document %i exactly as the yaml package does', (_i, doc) => {
    const full = parse(doc as string) ?? {}
    expect(parseFlatYaml(doc as string)).toEqual(full)
  })

  it.each(REFUSED)('refuses %j at line %i', (doc, line, why) => {
    let err: unknown
    try { parseFlatYaml(doc) } catch (e) { err = e }
    expect(err).toBeInstanceOf(FlatYamlError)
    expect((err as FlatYamlError).line).toBe(line)
    expect((err as FlatYamlError).reason).toMatch(why)
  })

  it('reads an operator-written cdn.yaml into the session settings, naming no secret in errors', () => {
    const c = parseCdnYaml(ACCEPTED[3], true)
    expect(c).toEqual({
      host: 'https://cdn.example.com:9000',
      region: 'eu-central-1',
      downloaderAccessKey: 'AKIA#NOTACOMMENT',
      downloaderAccessSecret: `it's: a "secret" # not a comment`,
      uploaderAccessKey: 'UPéA\t"q"\\',
      uploaderAccessSecret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    })
    expect(() => parseCdnYaml('host: http://a\ndownloader_access_key: K\ndownloader_access_secret: "s3cr3t\n', true))
      .toThrow(/^cdn\.yaml is not a flat YAML mapping of strings \(line 3: .*not closed.*\)$/)
    try { parseCdnYaml('host: http://a\ndownloader_access_secret: "s3cr3t\n', true) } catch (e) { expect(String((e as Error).message)).not.toMatch(/s3cr3t/) }
    expect(() => parseCdnYaml('host: http://a\ndownloader_access_key: 12\ndownloader_access_secret: s\n', true)).toThrow(/downloader_access_key must be a string/)
  })

  it('needs both uploader keys for a role that may upload, and none for the others', () => {
    const base = 'host: https://cdn.example.com\ndownloader_access_key: DK\ndownloader_access_secret: DS\n'
    expect(() => parseCdnYaml(base, true)).toThrow(/^cdn\.yaml: uploader_access_key is missing/)
    expect(() => parseCdnYaml(`${base}uploader_access_key: UK\n`, true)).toThrow(/^cdn\.yaml: uploader_access_secret is missing/)
    expect(parseCdnYaml(base, false)).toEqual({ host: 'https://cdn.example.com', region: 'us-east-1', downloaderAccessKey: 'DK', downloaderAccessSecret: 'DS' })
    // A reader's session never holds them, even when the file has them.
    expect(parseCdnYaml(`${base}uploader_access_key: UK\nuploader_access_secret: US\n`, false)).not.toHaveProperty('uploaderAccessKey')
  })
})
