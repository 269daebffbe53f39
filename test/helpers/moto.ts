// A real S3-compatible server that checks SigV4: moto_server with IAM auth after its first requests.
import { spawn, type ChildProcess } from 'node:child_process'
import { freePort, waitFor } from './spawn'

/** Access keys of one IAM user. */
export interface Keys { accessKeyId: string; secretAccessKey: string }

export interface Moto {
  url: string
  downloader: Keys
  uploader: Keys
  child: ChildProcess
  stop(): Promise<void>
}

/** How many unauthenticated requests moto allows before it checks every signature. */
const WINDOW = 12

const FAKE_AUTH = (service: string) => `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`

/**
 * Starts moto_server, creates (inside the no-auth window) the buckets and two IAM users:
 * a downloader allowed s3:GetObject and an uploader allowed s3:PutObject/GetObject; then
 * spends the rest of the window until a mis-signed request is refused.
 */
export async function startMoto(buckets: string[]): Promise<Moto> {
  const port = await freePort()
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: String(WINDOW) }, stdio: 'ignore',
  })
  const url = `http://127.0.0.1:${port}`
  try {
    return await setup(url, child, buckets)
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
}

async function setup(url: string, child: ChildProcess, buckets: string[]): Promise<Moto> {
  await waitFor(`${url}/moto-api/`, 20_000)
  const iam = async (params: Record<string, string>) => {
    const r = await fetch(url, { method: 'POST', headers: { authorization: FAKE_AUTH('iam'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...params, Version: '2010-05-08' }) })
    const text = await r.text()
    if (!r.ok) throw new Error(`moto IAM ${params.Action}: ${r.status} ${text}`)
    return text
  }
  const user = async (name: string, actions: string[]): Promise<Keys> => {
    await iam({ Action: 'CreateUser', UserName: name })
    await iam({ Action: 'PutUserPolicy', UserName: name, PolicyName: `${name}-s3`,
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }) })
    const xml = await iam({ Action: 'CreateAccessKey', UserName: name })
    return { accessKeyId: /<AccessKeyId>(.+?)</.exec(xml)![1], secretAccessKey: /<SecretAccessKey>(.+?)</.exec(xml)![1] }
  }
  const downloader = await user('loader-downloader', ['s3:GetObject', 's3:HeadObject'])
  const uploader = await user('loader-uploader', ['s3:PutObject', 's3:GetObject'])
  for (const b of buckets) {
    const r = await fetch(`${url}/${b}`, { method: 'PUT', headers: { authorization: FAKE_AUTH('s3') } })
    if (!r.ok) throw new Error(`moto create bucket ${b}: ${r.status}`)
  }
  // Spend the rest of the window: from here on every signature is checked.
  for (let i = 0; i < WINDOW + 2; i++) {
    const r = await fetch(`${url}/${buckets[0]}/probe`, { headers: { authorization: FAKE_AUTH('s3') } })
    await r.arrayBuffer()
    if (r.status === 403) break
    if (i === WINDOW + 1) throw new Error('moto never started checking signatures')
  }
  return {
    url, downloader, uploader, child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
    },
  }
}
