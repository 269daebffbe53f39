// The hardware fingerprint format (crypto.md §3), its memoisation and the override.
import { describe, expect, it, vi } from 'vitest'
import { createHardware, formatFingerprint, isGenericFingerprint } from '../../runtime/bindings/hardware'
import { FINGERPRINT } from '../helpers/vectors'

describe('hardware fingerprint', () => {
  it('formats the facts exactly, folding white space', () => {
    const f = formatFingerprint({ cpu: '  Test   CPU\t8-Core ', gpu: 'Test GPU', memory: '8589934592', serial: 'SN-0001\n' })
    expect(f).toEqual({ fingerprint: FINGERPRINT, unknown: [] })
  })

  it('says unknown for empty fields and reports them', () => {
    const f = formatFingerprint({ cpu: 'ARM Cortex-A78AE', gpu: '', memory: '8000000000', serial: ' ' })
    expect(f.fingerprint).toBe('CPU: ARM Cortex-A78AE. GPU: unknown. Memory: 8000000000. DriveSerial: unknown')
    expect(f.unknown).toEqual(['gpu', 'serial'])
    expect(isGenericFingerprint(f.unknown)).toBe(true)
  })

  it('reads the facts once', async () => {
    const read = vi.fn(async () => ({ cpu: 'c', gpu: 'g', memory: '1', serial: 's' }))
    const hw = createHardware(undefined, read)
    await Promise.all([hw(), hw(), hw()])
    expect(read).toHaveBeenCalledTimes(1)
    expect((await hw()).source).toBe('detected')
  })

  it('uses the override and says so', async () => {
    const read = vi.fn()
    const h = await createHardware('CPU: x. GPU: y. Memory: 1. DriveSerial: z', read)()
    expect(h).toEqual({ fingerprint: 'CPU: x. GPU: y. Memory: 1. DriveSerial: z', source: 'override', unknown: [] })
    expect(read).not.toHaveBeenCalled()
  })

  it('detects real facts on this machine through systeminformation', async () => {
    const h = await createHardware()()
    expect(h.fingerprint).toMatch(/^CPU: .+\. GPU: .+\. Memory: \d+\. DriveSerial: .+$/)
    // CPU and memory are readable everywhere (containers too); GPU and disk serial may be hidden.
    expect(h.unknown).not.toContain('cpu')
    expect(h.unknown).not.toContain('memory')
    expect(h.fingerprint).not.toMatch(/^CPU: unknown\./)
    expect(Number(/Memory: (\d+)\./.exec(h.fingerprint)![1])).toBeGreaterThan(0)
    expect(h.unknown.length).toBeLessThan(4)
  })
})
