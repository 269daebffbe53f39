// `npm run bench`: every benchmark in one go, then bench/REPORT.md and bench/chart.svg.
// `--quick` scales sizes down and writes bench/out/ (CI runs it so the bench cannot rot). Exits 0 unless a run failed.
import { benchCeilings } from './ceilings'
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
// `--max-mib N` drops the larger sizes (a shorter full run; the report says which sizes ran).
const maxArg = process.argv.indexOf('--max-mib')
const maxMiB = maxArg > 0 ? Number(process.argv[maxArg + 1]) : Infinity
const sizes = (quick ? [MiB, 16 * MiB] : [MiB, 16 * MiB, 256 * MiB, 1024 * MiB]).filter((n) => n <= maxMiB * MiB)
// Alternating runs of ours and the reference per figure: median and best are reported.
const runs = quick ? 3 : 5
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
  await area(`crypto: our streaming decrypt and openssl enc -d -in (${mib})`, () => benchCrypto(sizes, runs))
  await area(`flows: /upload, cold and warm /load (HTTP and HTTPS) against curl and openssl (${mib})`, () => benchFlows(sizes, runs))
  await area(`unlock into a sink engine and into podman (${mib})`, () => benchUnlock(sizes, runs))
  await area('ceilings: bare Node server → curl, bare node:http client and PUT ← → moto, beside the references', () => benchCeilings(sizes.includes(256 * MiB) ? 256 * MiB : sizes[sizes.length - 1], runs))
  await area('concurrency: shared cold download, many warm loads', () => benchConcurrency(quick ? 2 * MiB : 8 * MiB, quick ? 16 : 64, 8))
  await area('field deployment: POST to serving, /status p99 across swaps', () => benchDeploy(quick ? 3 : 10))
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
