// `npm run bench`: every benchmark in one go, then bench/REPORT.md and bench/chart.svg.
// `--quick` scales sizes down and writes bench/out/ (CI runs it so the bench cannot rot). Exits 0 unless a run failed.
import { benchConcurrency } from './concurrency'
import { benchCrypto } from './crypto'
import { benchDeploy } from './deploy'
import { benchFlows } from './flows'
import { benchUnlock } from './unlock'
import { writeChart } from './chart'
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { MiB, OUT, type Row } from './lib'
import { writeReport } from './report'

const quick = process.argv.includes('--quick')
const sizes = quick ? [MiB, 16 * MiB] : [MiB, 16 * MiB, 256 * MiB, 1024 * MiB]
// Alternating runs of ours and the reference per figure: median and best are reported.
const runs = quick ? 3 : 5
const rows: Row[] = []
try {
  rows.push(...await benchCrypto(sizes, runs))
  rows.push(...await benchFlows(sizes, runs))
  rows.push(...await benchUnlock(sizes, runs))
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
// Inputs regenerate in seconds; only the report, the chart and (quick) their folder stay.
for (const f of readdirSync(OUT)) if (!/^(REPORT\.md|chart\.svg)$/.test(f)) rmSync(join(OUT, f), { recursive: true, force: true })
