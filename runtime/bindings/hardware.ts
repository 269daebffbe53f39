// The device fingerprint of crypto.md §3, read through systeminformation (no shell command of ours).
import si from 'systeminformation'
import type { Hardware } from '../../shared/contract/function'

const fold = (s: unknown) => String(s ?? '').replace(/\s+/g, ' ').trim()

/** The raw facts a fingerprint is made of. */
export interface HardwareFacts {
  cpu: string
  gpu: string
  memory: string
  serial: string
}

/** Formats facts into the fingerprint string; empty fields become `unknown`. */
export function formatFingerprint(f: HardwareFacts): { fingerprint: string; unknown: string[] } {
  const unknown: string[] = []
  const field = (name: keyof HardwareFacts) => {
    const value = fold(f[name])
    if (!value) unknown.push(name)
    return value || 'unknown'
  }
  const cpu = field('cpu'), gpu = field('gpu'), memory = field('memory'), serial = field('serial')
  return { fingerprint: `CPU: ${cpu}. GPU: ${gpu}. Memory: ${memory}. DriveSerial: ${serial}`, unknown }
}

/** Reads the facts from systeminformation. */
export async function readHardwareFacts(): Promise<HardwareFacts> {
  const [cpu, graphics, mem, disks] = await Promise.all([
    si.cpu().catch(() => null),
    si.graphics().catch(() => null),
    si.mem().catch(() => null),
    si.diskLayout().catch(() => []),
  ])
  return {
    cpu: cpu ? fold(`${cpu.manufacturer ?? ''} ${cpu.brand ?? ''}`) : '',
    gpu: (graphics?.controllers ?? []).map((c) => fold(c.model)).filter(Boolean).join(', '),
    memory: mem?.total ? String(mem.total) : '',
    serial: fold(disks.find((d) => fold(d.serialNum))?.serialNum),
  }
}

/** A fingerprint that detection alone cannot tell apart from another device of the same model. */
export function isGenericFingerprint(unknown: string[]): boolean {
  return unknown.includes('serial') || unknown.length >= 2
}

/**
 * Returns a memoised `hardware()` binding: the override when given (reported as such),
 * otherwise the detected fingerprint, computed once.
 */
export function createHardware(override?: string, read: () => Promise<HardwareFacts> = readHardwareFacts): () => Promise<Hardware> {
  let memo: Promise<Hardware> | undefined
  return () => (memo ??= override
    ? Promise.resolve({ fingerprint: override, source: 'override' as const, unknown: [] })
    : read().then((facts) => ({ ...formatFingerprint(facts), source: 'detected' as const })))
}
