// Checks real answers against the loader's OpenAPI document: documented status, content type and body schema.
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { expect } from 'vitest'

type Json = Record<string, any>

/** One answer as the client saw it. */
export interface SeenAnswer { status: number; contentType: string | null; body: Buffer }

/** A checker over `doc`; `seen` records which operations answered a success and a problem. */
export function answerChecker(doc: Json) {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  ;(addFormats as unknown as (a: Ajv2020) => void)(ajv)
  const seen = new Map<string, { success: number[]; problem: number[]; bytes: number }>()
  const resolve = (s: Json): Json => (s?.$ref ? doc.components.schemas[s.$ref.split('/').pop()] : s)

  /** Checks one answer of `method path` (path as in the document, e.g. /load/{filename}). */
  function check(method: string, path: string, a: SeenAnswer): void {
    const op = doc.paths[path]?.[method.toLowerCase()]
    expect(op, `${method} ${path} is documented`).toBeDefined()
    const documented = op.responses[String(a.status)]
    expect(documented, `${method} ${path} answered ${a.status}, which the document does not list (${Object.keys(op.responses)})`).toBeDefined()
    const type = (a.contentType ?? '').split(';')[0].trim()
    const content = documented.content as Json | undefined
    if (!content) {
      expect(a.body.length, `${method} ${path} ${a.status} has no documented body`).toBe(0)
    } else {
      const key = Object.keys(content).find((k) => k.split(';')[0].trim() === type)
      expect(key, `${method} ${path} ${a.status}: content type ${type} is not one of ${Object.keys(content)}`).toBeDefined()
      if (/json$/.test(type)) {
        const validate = ajv.compile(resolve(content[key!].schema))
        const body = JSON.parse(a.body.toString('utf8'))
        expect(validate(body) ? [] : validate.errors, `${method} ${path} ${a.status} body ${a.body.toString('utf8').slice(0, 300)}`).toEqual([])
      }
    }
    const k = `${method.toUpperCase()} ${path}`
    const s = seen.get(k) ?? { success: [], problem: [], bytes: 0 }
    ;(a.status >= 400 ? s.problem : s.success).push(a.status)
    s.bytes += a.body.length
    seen.set(k, s)
  }

  /** Fetches, checks the answer against the document, and returns it with its body read. */
  async function call(method: string, path: string, url: string, init: RequestInit = {}): Promise<SeenAnswer & { json(): any; headers: Headers }> {
    const r = await fetch(url, { ...init, method })
    const body = Buffer.from(await r.arrayBuffer())
    const a = { status: r.status, contentType: r.headers.get('content-type'), body }
    check(method, path, a)
    return { ...a, headers: r.headers, json: () => JSON.parse(body.toString('utf8')) }
  }

  /** Every operation of the document with what it answered. */
  const operations = () => Object.entries(doc.paths as Json).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
  return { check, call, seen, operations }
}
