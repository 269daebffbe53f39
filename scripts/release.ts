// `npm run release -- <name…> --key <private.pem> [--version N]`: builds those functions (build.mjs
// into a temporary folder, dist/ untouched) and writes dist/releases/<name>-<version>/ with the
// artifact, release.json and release.sig (`--out <dir>` writes there instead of dist/releases).
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { makeRelease } from './release-files'

const root = process.cwd()
const args = process.argv.slice(2)
const names: string[] = []
let keyFile: string | undefined
let version = Math.floor(Date.now() / 1000)
let outRoot = join(root, 'dist', 'releases')
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--key') keyFile = args[++i]
  else if (args[i] === '--out') outRoot = resolve(args[++i])
  else if (args[i] === '--version') version = Number(args[++i])
  else names.push(args[i])
}
if (!names.length || !keyFile || !Number.isSafeInteger(version) || version < 1) {
  console.error('usage: npm run release -- <name…> --key <private.pem> [--version N]')
  process.exit(2)
}
const key = readFileSync(resolve(keyFile), 'utf8')
let source: string | null = null
try {
  source = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  const dirty = execFileSync('git', ['status', '--porcelain', 'functions', 'shared'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  if (dirty) source += '-dirty'
} catch { /* not a git checkout */ }

const out = mkdtempSync(join(tmpdir(), 'loader-release-'))
try {
  execFileSync(process.execPath, [join(root, 'build.mjs'), ...names], { cwd: root, env: { ...process.env, BUILD_OUT_DIR: out }, stdio: ['ignore', 'ignore', 'inherit'] })
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { functions: { name: string; file: string; routes: never[] }[] }
  for (const name of names) {
    const entry = manifest.functions.find((f) => f.name === name)
    if (!entry) throw new Error(`build.mjs made no artifact for ${name}`)
    const artifact = readFileSync(join(out, entry.file))
    const { json, sig } = makeRelease({ name, artifact, routes: entry.routes, version, key, source })
    const dest = join(outRoot, `${name}-${version}`)
    const tmp = `${dest}.tmp`
    rmSync(tmp, { recursive: true, force: true })
    mkdirSync(tmp, { recursive: true })
    writeFileSync(join(tmp, `${name}.mjs`), artifact)
    writeFileSync(join(tmp, 'release.json'), json)
    writeFileSync(join(tmp, 'release.sig'), sig)
    rmSync(dest, { recursive: true, force: true })
    renameSync(tmp, dest)
    console.log(`${name} ${version}  ${(artifact.length / 1024).toFixed(1)} KiB  ${dest}`)
  }
} catch (e) {
  console.error(`release: ${(e as Error).message}`)
  process.exitCode = 1
} finally {
  rmSync(out, { recursive: true, force: true })
}
