// `npm run bench`: every benchmark in one go; `--quick` scales sizes down for CI. Exits 0 unless a run failed.
import { benchCrypto } from './crypto'
import { benchFlows } from './flows'
import { benchUnlock } from './unlock'
import { MiB, type Row } from './lib'
import { writeReport } from './report'

const quick = process.argv.includes('--quick')
const rows: Row[] = []
rows.push(...await benchCrypto(quick ? [MiB, 16 * MiB] : [MiB, 16 * MiB, 256 * MiB, 1024 * MiB]))
rows.push(...await benchFlows(quick ? [16 * MiB] : [16 * MiB, 256 * MiB]))
rows.push(...await benchUnlock(quick ? [16 * MiB] : [64 * MiB, 1024 * MiB]))
console.log(writeReport(rows, quick))
