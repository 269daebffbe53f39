// `npm run bench`: every benchmark in one go, then bench/REPORT.md and bench/chart.svg.
// `--quick` scales sizes down and writes bench/out/ (CI runs it so the bench cannot rot). Exits 0 unless a run failed.
import { benchConcurrency } from './concurrency'
import { benchCrypto } from './crypto'
import { benchDeploy } from './deploy'
import { benchFlows } from './flows'
import { benchUnlock } from './unlock'
import { writeChart } from './chart'
import { mkdirSync } from 'node:fs'
import { MiB, OUT, type Row } from './lib'
import { writeReport } from './report'

const quick = process.argv.includes('--quick')
const sizes = quick ? [MiB, 16 * MiB] : [MiB, 16 * MiB, 256 * MiB, 1024 * MiB]
const rows: Row[] = []
try {
  rows.push(...await benchCrypto(sizes))
  rows.push(...await benchFlows(sizes))
  rows.push(...await benchUnlock(sizes))
  rows.push(...await benchConcurrency(quick ? 2 * MiB : 8 * MiB, quick ? 16 : 64, 8))
  rows.push(...await benchDeploy(quick ? 3 : 10))
} catch (e) {
  console.error('bench: a run failed:', e)
  process.exitCode = 1
}
// A quick run (CI, a check while developing) never overwrites the committed full report.
const dir = quick ? OUT : import.meta.dirname
mkdirSync(dir, { recursive: true })
await writeChart(rows, dir)
console.log(writeReport(rows, quick, dir))
