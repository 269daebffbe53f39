// Prints bench rows and writes bench/REPORT.md: figures beside their references, ratios, peak RSS, machine.
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { MiB, mibps, type Row } from './lib'

const size = (b: number) => (b >= 1024 * MiB ? `${(b / 1024 / MiB).toFixed(0)} GiB` : b >= MiB ? `${(b / MiB).toFixed(0)} MiB` : `${b} B`)

/** Markdown table of rows, one per area. */
export function renderReport(rows: Row[], quick: boolean): string {
  const lines = [
    '# Benchmark report', '',
    `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, ${process.platform}/${process.arch}.`,
    `Run: ${new Date().toISOString()}${quick ? ' (quick: sizes scaled down)' : ''}. Reproduce with \`npm run bench\` (\`npm run bench -- --quick\` for the short form).`, '',
    'Each figure stands beside a reference measured in the same run on the same bytes (openssl, curl against the same S3 server); ratio = ours / reference. Peak RSS is the VmHWM of the process under test. Targets come from the issues; a figure that misses one is reported as it is.', '',
    '![throughput and peak RSS against size](chart.svg)', '',
  ]
  for (const area of [...new Set(rows.map((r) => r.area))]) {
    lines.push(`## ${area}`, '', '| what | size | ours MiB/s | reference | ref MiB/s | ratio | peak RSS | target |', '|---|---|---|---|---|---|---|---|')
    for (const r of rows.filter((x) => x.area === area)) {
      const ours = mibps(r.bytes, r.ms)
      const ref = r.refMs ? mibps(r.bytes, r.refMs) : undefined
      // A row about a few bytes (a deployment) is a time, not a throughput.
      lines.push(`| ${r.what} | ${size(r.bytes)} | ${r.bytes < 1024 ? `${r.ms.toFixed(0)} ms` : ours.toFixed(0)} | ${r.refName ?? '—'} | ${ref?.toFixed(0) ?? '—'} | ${ref ? (ours / ref).toFixed(2) : '—'} | ${r.peakRssMiB ? `${r.peakRssMiB.toFixed(0)} MiB` : '—'} | ${r.target ?? ''} |`)
    }
    lines.push('')
  }
  return lines.join('\n')
}

/** Writes REPORT.md into `dir` (bench/ for a full run, bench/out/ for a quick one) and returns it. */
export function writeReport(rows: Row[], quick: boolean, dir: string): string {
  const md = renderReport(rows, quick)
  writeFileSync(join(dir, 'REPORT.md'), md)
  return md
}
