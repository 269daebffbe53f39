// Renders bench/chart.svg with vega-lite: throughput and peak RSS against size, per series.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as vega from 'vega'
import { compile } from 'vega-lite'
import { MiB, mibps, type Row } from './lib'

/** The series plotted: our figures per area, and openssl from the crypto rows. */
function points(rows: Row[]) {
  const out: { series: string; sizeMiB: number; mibps: number; rssMiB?: number }[] = []
  for (const r of rows) {
    const series = r.area === 'crypto' ? 'stream decrypt (ours)' : r.area === 'load (warm)' && r.what.includes('steady') ? (r.what.includes('HTTPS') ? 'warm /load over HTTPS' : 'warm /load')
      : r.area === 'load (cold)' && r.refMs ? 'cold /load' : r.area === 'upload' && r.refMs ? 'raw /upload' : r.area === 'unlock' ? 'unlock (sink engine)' : r.area === 'unlock (podman)' ? 'unlock (podman)' : null
    if (!series) continue
    out.push({ series, sizeMiB: r.bytes / MiB, mibps: mibps(r.bytes, r.ms), rssMiB: r.peakRssMiB })
    if (r.area === 'crypto' && r.refMs) out.push({ series: 'openssl enc -d -in', sizeMiB: r.bytes / MiB, mibps: mibps(r.bytes, r.refMs) })
    if (r.area === 'upload' && r.refMs) out.push({ series: 'curl PUT (S3)', sizeMiB: r.bytes / MiB, mibps: mibps(r.bytes, r.refMs) })
    if (r.area === 'load (cold)' && r.refMs) out.push({ series: 'curl GET (S3)', sizeMiB: r.bytes / MiB, mibps: mibps(r.bytes, r.refMs) })
    if (r.area === 'unlock (podman)' && r.refMs) out.push({ series: 'podman load -i', sizeMiB: r.bytes / MiB, mibps: mibps(r.bytes, r.refMs) })
  }
  return out
}

/** Renders the chart into `dir` and returns its path. */
export async function writeChart(rows: Row[], dir: string): Promise<string> {
  const x = { field: 'sizeMiB', type: 'quantitative', scale: { type: 'log' }, title: 'size (MiB, log)' } as const
  const color = { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 400 } } as const
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    data: { values: points(rows) },
    vconcat: [
      { width: 520, height: 220, title: 'Throughput against size', mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'mibps', type: 'quantitative', title: 'MiB/s' }, color } },
      { width: 520, height: 180, title: 'Peak RSS against size (the loader process)', mark: { type: 'line', point: true },
        transform: [{ filter: 'isValid(datum.rssMiB)' }],
        encoding: { x, y: { field: 'rssMiB', type: 'quantitative', title: 'MiB', scale: { zero: true } }, color } },
    ],
  }).spec
  const svg = await new vega.View(vega.parse(spec), { renderer: 'none' }).toSVG()
  const path = join(dir, 'chart.svg')
  writeFileSync(path, svg)
  return path
}
