// Bench worker: a Docker-engine stand-in on a unix socket that discards /images/load bodies.
import { createServer } from 'node:http'
import { rmSync } from 'node:fs'

const socket = process.argv[2]
rmSync(socket, { force: true })
createServer((req, res) => {
  req.on('data', () => {})
  req.on('end', () => res.end(JSON.stringify({ stream: 'Loaded image ID: sha256:' + '0'.repeat(64) }) + '\n'))
}).listen(socket, () => console.log('ready'))
