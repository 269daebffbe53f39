// Builds one minified ESM artifact per function, the runtime, and dist/manifest.json.
// `node build.mjs` builds all; `node build.mjs <name>` rebuilds one function (redeploy).
// `--readable` keeps identifiers (for CPU profiles: the bench builds one into bench/out/; never
// deployed, so the size limit does not apply). `--bake-salts` (opt-in) bakes HARDWARE_SALT, API_KEY_SALT, RESOURCE_KEY_SALT from the
// build environment into the runtime; a runtime value still overrides them.
import * as esbuild from 'esbuild'
import { createHash, randomBytes } from 'node:crypto'
import { isBuiltin } from 'node:module'
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

const root = new URL('.', import.meta.url).pathname
const args = process.argv.slice(2)
const outDir = resolve(root, process.env.BUILD_OUT_DIR || 'dist')
const bake = args.includes('--bake-salts')
const readable = args.includes('--readable')
const only = args.filter((a) => !a.startsWith('--'))
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))

const names = (await readdir(join(root, 'functions'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort()
for (const n of only) {
  if (n !== 'runtime' && !names.includes(n)) {
    console.error(`build: no function named ${n} (have: ${names.join(', ')})`)
    process.exit(2)
  }
}

const define = { __LOADER_VERSION__: JSON.stringify(pkg.version) }
if (bake) {
  const salts = {}
  for (const k of ['HARDWARE_SALT', 'API_KEY_SALT', 'RESOURCE_KEY_SALT']) if (process.env[k]) salts[k] = process.env[k]
  define.__LOADER_BAKED_SALTS__ = JSON.stringify(salts)
}

/** Shared esbuild options: node 20 ESM, minified, everything bundled but node built-ins. */
const base = {
  bundle: true, ...(readable ? { minifyWhitespace: true, minifySyntax: true } : { minify: true }), format: 'esm', platform: 'node', target: 'node20', sourcemap: false,
  legalComments: 'none', metafile: true, write: false, logLevel: 'warning', define,
  // ofetch's node build pulls node-fetch-native's polyfill; Node 20 has fetch built in.
  alias: { 'node-fetch-native': 'node-fetch-native/native' },
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
}

// systeminformation requires these inside try/catch on macOS only; they are never bundled.
const OPTIONAL = ['osx-temperature-sensor', 'macos-temperature-sensor']
base.external = OPTIONAL

/**
 * Largest function artifact (the runtime is not bound by it): a redeploy ships one small file.
 * 60 KiB; BUILD_FUNCTION_MAX_KIB lowers it for the build's own test.
 */
const FUNCTION_MAX_BYTES = Math.min(60, Number(process.env.BUILD_FUNCTION_MAX_KIB) || 60) * 1024

const sha256 = (b) => createHash('sha256').update(b).digest('hex')

async function writeAtomic(path, data) {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, data)
  await rename(tmp, path)
}

/**
 * Builds one entry to `file`; fails when the bundle imports anything but node built-ins.
 * An artifact larger than `maxBytes` is not written (`over: true`).
 */
async function buildOne(entry, file, maxBytes = Infinity) {
  const result = await esbuild.build({ ...base, entryPoints: [join(root, entry)], outfile: join(outDir, file) })
  const out = result.outputFiles[0]
  const imports = Object.values(result.metafile.outputs)[0].imports.filter((i) => i.external).map((i) => i.path)
  const foreign = imports.filter((p) => !isBuiltin(p) && !OPTIONAL.includes(p))
  if (foreign.length) throw new Error(`${file} imports non-built-in modules: ${foreign.join(', ')}`)
  if (out.contents.length > maxBytes) return { bytes: out.contents.length, sha256: sha256(out.contents), over: true }
  await mkdir(join(outDir, file, '..'), { recursive: true })
  await writeAtomic(join(outDir, file), out.contents)
  return { bytes: out.contents.length, sha256: sha256(out.contents) }
}

const manifestPath = join(outDir, 'manifest.json')
const previous = await readFile(manifestPath, 'utf8').then(JSON.parse, () => ({ functions: [] }))
const targets = only.length ? only : [...names, 'runtime']
const entries = new Map(previous.functions.map((f) => [f.name, f]))
const rows = []

for (const name of targets) {
  if (name === 'runtime') {
    const r = await buildOne('runtime/main.ts', 'runtime.mjs')
    rows.push(['runtime', r.bytes, r.sha256])
    continue
  }
  const file = `functions/${name}.mjs`
  const r = await buildOne(`functions/${name}/index.ts`, file, readable ? Infinity : FUNCTION_MAX_BYTES)
  if (r.over) {
    rows.push([name, r.bytes, r.sha256, true])
    continue
  }
  const mod = (await import(`${join(outDir, file)}?sha256=${r.sha256}`)).default
  if (mod?.name !== name) throw new Error(`${file}: default export is not named ${name}`)
  entries.set(name, { name, file, sha256: r.sha256, bytes: r.bytes, routes: mod.routes.map(({ doc: _doc, ...r }) => r) })
  rows.push([name, r.bytes, r.sha256])
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`.padStart(11)
const over = rows.filter((r) => r[3])

// The manifest is written last, so a watcher never sees an entry before its artifact;
// not at all when an artifact is over the limit (nothing changes for a running loader).
const manifest = {
  version: pkg.version,
  builtAt: new Date().toISOString(),
  functions: [...entries.values()].filter((f) => names.includes(f.name)).sort((a, b) => a.name.localeCompare(b.name)),
}
if (!over.length) await writeAtomic(manifestPath, JSON.stringify(manifest, null, 2) + '\n')

console.log(`${'artifact'.padEnd(10)} ${'size'.padStart(11)}  sha256`)
for (const [n, b, s, o] of rows) console.log(`${n.padEnd(10)} ${kb(b)}  ${s.slice(0, 16)}…${o ? `  OVER ${FUNCTION_MAX_BYTES / 1024} KiB, not written` : ''}`)
if (bake) console.log('salts baked in from the build environment (opt-in); runtime values override them')
for (const [n, b] of over) {
  console.error(`build: functions/${n}.mjs would be ${kb(b).trim()}, over the ${FUNCTION_MAX_BYTES / 1024} KiB limit of a function artifact; the manifest was not updated.`
    + ` See what is in it: npx esbuild functions/${n}/index.ts --bundle --platform=node --format=esm --minify --analyze --outfile=/dev/null`)
}
if (over.length) process.exit(1)
