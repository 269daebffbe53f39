// A real Docker-compatible engine: podman's API service on a private root and socket.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import http from 'node:http'
import { tempDir } from './tmp'

export interface Podman {
  socket: string
  /** Runs the podman CLI on the same private storage (test preparation only; the loader never does). */
  cli(args: string[]): string
  stop(): Promise<void>
}

export async function startPodman(): Promise<Podman> {
  try {
    execFileSync('podman', ['--version'])
  } catch {
    throw new Error('podman is not installed: `apt-get install -y podman` (.ci/run does it)')
  }
  const dir = tempDir('podman-')
  const base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs']
  const socket = join(dir, 'podman.sock')
  const child: ChildProcess = spawn('podman', [...base, 'system', 'service', '--time=0', `unix://${socket}`], { stdio: 'ignore' })
  const ping = () => new Promise<void>((ok, fail) => {
    const req = http.request({ socketPath: socket, path: '/_ping' }, (res) => { res.resume(); res.statusCode === 200 ? ok() : fail(new Error(String(res.statusCode))) })
    req.once('error', fail)
    req.end()
  })
  const end = Date.now() + 30_000
  for (;;) {
    try { await ping(); break } catch { /* starting */ }
    if (Date.now() > end) { child.kill('SIGKILL'); throw new Error('podman system service did not come up') }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    socket,
    cli: (args) => execFileSync('podman', [...base, ...args], { encoding: 'utf8' }),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
