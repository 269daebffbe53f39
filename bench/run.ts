// `npm run bench`: every benchmark in one go, then bench/REPORT.md and bench/chart.svg.
// `--quick` scales sizes down and writes bench/out/ (CI runs it so the bench cannot rot). Exits 0 unless a run failed.
import { benchConcurrency } from './concurrency'
import { benchCrypto } from './crypto'
import { benchFlows } from './flows'
import { benchUnlock } from './unlock'
import { writeChart } from './chart'
import { mkdirSync } from 'node:fs'
import { MiB, OUT, type Row } from './lib'
import { writeReport } from './report'

const quick = process.argv.includes('--quick')
const sizes = quick ? [MiB, 16 * MiB] : [MiB, 16 * MiB, 256 * MiB, 1024 * MiB]
const rows: Row[] = []
const began = performance.now()
/** Runs one area, saying what it is doing and how long it took (a full run takes many minutes). */
async function area(name: string, run: () => Promise<Row[]>): Promise<void> {
  const t = performance.now()
  console.log(`bench: ${name} …`)
  const got = await run()
  rows.push(...got)
  console.log(`bench: ${name}: ${got.length} measurements in ${((performance.now() - t) / 1000).toFixed(1)} s (${((performance.now() - began) / 1000).toFixed(0)} s so far)`)
}
const mib = sizes.map((n) => `${n / MiB} MiB`).join(', ')
try {
  await area(`crypto: our streaming decrypt and openssl (${mib})`, () => benchCrypto(sizes))
  await area(`flows: warm and cold /load, /upload (${mib})`, () => benchFlows(sizes))
  await area(`unlock into a sink engine (${mib})`, () => benchUnlock(sizes))
  await area('concurrency: shared cold download, many warm loads', () => benchConcurrency(quick ? 2 * MiB : 8 * MiB, quick ? 16 : 64, 8))
} catch (e) {
  console.error('bench: a run failed:', e)
  process.exitCode = 1
}
// A quick run (CI, a check while developing) never overwrites the committed full report.
const dir = quick ? OUT : import.meta.dirname
mkdirSync(dir, { recursive: true })
await writeChart(rows, dir)
console.log(writeReport(rows, quick, dir))
