// Builds dist/ once before the end-to-end tests, so they run the minified artifacts that ship.
import { execFileSync } from 'node:child_process'

export default function setup() {
  if (process.env.E2E_SKIP_BUILD === '1') return
  execFileSync(process.execPath, ['build.mjs'], { stdio: 'inherit' })
}
