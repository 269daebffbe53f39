// Prints bench rows and writes bench/REPORT.md: figures beside their references (median and best
// of alternating runs), ratios, time to first byte, peak RSS, targets met or missed and, for each
// missed target, where the time goes (a CPU profile of the loader).
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { MiB, mibps, type Row } from './lib'
import { missed } from './flows'

const size = (b: number) => (b >= 1024 * MiB ? `${(b / 1024 / MiB).toFixed(0)} GiB` : b >= MiB ? `${(b / MiB).toFixed(0)} MiB` : `${b} B`)
const rate = (bytes: number, med?: number, min?: number) => med === undefined ? '—' : `${mibps(bytes, med).toFixed(0)}${min !== undefined && min !== med ? ` (${mibps(bytes, min).toFixed(0)})` : ''}`

/** Markdown table of rows, one per area. */
export function renderReport(rows: Row[], quick: boolean): string {
  const lines = [
    '# Benchmark report', '',
    `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, ${process.platform}/${process.arch}.`,
    `Run: ${new Date().toISOString()}${quick ? ' (quick: sizes scaled down)' : ''}. Reproduce with \`npm run bench\` (\`npm run bench -- --quick\` for the short form, \`-- --max-mib N\` to stop at N MiB).`,
    `Sizes measured: ${[...new Set(rows.filter((r) => r.bytes >= MiB).map((r) => r.bytes).sort((a, b) => a - b).map(size))].join(', ')}.`, '',
    'Every figure stands beside the best a user could do with standard tools on the same bytes, measured in the same run: ' +
    '`openssl enc -d -in <ciphertext file> -out /dev/null` for decryption, `curl --aws-sigv4` GET of the same big part from the same S3 for cold loads, ' +
    '`curl --aws-sigv4 -T` PUT of the same size to the same S3 for uploads, `podman load -i` of the plaintext archive for unlock into podman. ' +
    '`curl` is the loader\'s client. Ours and the reference run alternately; MiB/s is the median run (the best run in brackets); ' +
    'ratio = reference time / our time, on medians (≥ 1 means faster than the reference). TTFB = curl\'s time to the first byte (median). ' +
    'Peak RSS is the VmHWM of the process under test. A figure that misses its target says so, and the section at the end shows where its time goes.', '',
    '![throughput and peak RSS against size](chart.svg)', '',
  ]
  for (const area of [...new Set(rows.map((r) => r.area))]) {
    lines.push(`## ${area}`, '', '| what | size | runs | ours MiB/s | reference | ref MiB/s | ratio | TTFB | peak RSS | target |', '|---|---|---|---|---|---|---|---|---|---|')
    for (const r of rows.filter((x) => x.area === area)) {
      // A row about a few bytes (a deployment) is a time, not a throughput.
      const ratio = r.refMs ? (r.refMs / r.ms).toFixed(2) : '—'
      const verdict = r.minRatio !== undefined || r.maxTtfbMs !== undefined ? (missed(r) ? ' **missed**' : ' met') : ''
      lines.push(`| ${r.what} | ${size(r.bytes)} | ${r.runs ?? 1} | ${r.bytes < 1024 ? `${r.ms.toFixed(0)} ms` : rate(r.bytes, r.ms, r.msMin)} | ${r.refName ?? '—'} | ${rate(r.bytes, r.refMs, r.refMin)} | ${ratio} | ${r.ttfbMs !== undefined ? `${r.ttfbMs.toFixed(0)} ms` : '—'} | ${r.peakRssMiB ? `${r.peakRssMiB.toFixed(0)} MiB` : '—'} | ${r.target ?? ''}${verdict} |`)
    }
    lines.push('')
  }
  const miss = rows.filter((r) => missed(r) || r.profile)
  lines.push('## Where the time goes (targets missed, and the first load after a start)', '')
  if (!miss.length) lines.push('Every target is met.', '')
  for (const r of miss) {
    lines.push(`- **${r.area}, ${r.what}, ${size(r.bytes)}**: ratio ${r.refMs ? (r.refMs / r.ms).toFixed(2) : '—'}${r.ttfbMs !== undefined ? `, TTFB ${r.ttfbMs.toFixed(0)} ms` : ''}${r.target ? ` (target ${r.target}${missed(r) ? ', missed' : ''})` : ''}. ` +
      (r.phases ? `Phases: ${r.phases}. ` : '') + (r.profile ? `Profile of one run: ${r.profile}.` : 'Profiled at the largest size only.'))
  }
  lines.push('')
  return lines.join('\n')
}

/** Writes REPORT.md into `dir` (bench/ for a full run, bench/out/ for a quick one) and returns it. */
export function writeReport(rows: Row[], quick: boolean, dir: string): string {
  const md = renderReport(rows, quick)
  writeFileSync(join(dir, 'REPORT.md'), md)
  return md
}
