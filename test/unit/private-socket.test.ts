// The admin socket's bind: 0600 at its final path, the process umask never touched, nothing left
// beside it, and a failed bind leaves no listener.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { listenPrivately } from '../../runtime/deploy/private-socket'

const dirs: string[] = []
const servers: Server[] = []
afterEach(() => {
  vi.restoreAllMocks()
  for (const s of servers.splice(0)) s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const dir = () => { const d = mkdtempSync(join(tmpdir(), 'sock-')); dirs.push(d); return d }
const server = () => { const s = createServer((c) => c.end('hi')); servers.push(s); return s }
const answers = (path: string) => new Promise<string>((ok, ko) => {
  let got = ''
  connect(path).on('data', (d) => { got += d }).on('end', () => ok(got)).on('error', ko)
})

describe('listenPrivately', () => {
  it('binds at the path with mode 0600, never changing the umask, and leaves nothing beside it', async () => {
    const d = dir()
    const umask = vi.spyOn(process, 'umask')
    await listenPrivately(server(), join(d, 'admin.sock'))
    expect(umask).not.toHaveBeenCalled()
    expect(statSync(join(d, 'admin.sock')).isSocket()).toBe(true)
    expect(statSync(join(d, 'admin.sock')).mode & 0o777).toBe(0o600)
    expect(readdirSync(d)).toEqual(['admin.sock'])
    expect(await answers(join(d, 'admin.sock'))).toBe('hi')
  })

  it('a path too long to stage is bound in place, still 0600', async () => {
    const d = join(dir(), 'x'.repeat(70))
    mkdirSync(d)
    await listenPrivately(server(), join(d, 'a.sock'))
    expect(statSync(join(d, 'a.sock')).mode & 0o777).toBe(0o600)
    expect(readdirSync(d)).toEqual(['a.sock'])
  })

  it('a failed bind closes the server and leaves nothing behind', async () => {
    const d = dir()
    mkdirSync(join(d, 'admin.sock')) // a folder where the socket should go: the rename fails
    const s = server()
    await expect(listenPrivately(s, join(d, 'admin.sock'))).rejects.toThrow()
    expect(s.listening).toBe(false)
    expect(readdirSync(d)).toEqual(['admin.sock'])
  })
})
