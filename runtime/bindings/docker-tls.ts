// The env.dockerTls binding: DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem, as the Docker CLI reads them.
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Config } from '../../shared/contract/config'
import type { DockerTls } from '../../shared/contract/docker-tls'
import { readCertificates, readKeyPair } from '../tls-files'

/** The folder of the engine's certificates: DOCKER_CERT_PATH, else ~/.docker (the CLI's default). */
export const dockerCertPath = (config: Config) => config.DOCKER_CERT_PATH ?? join(homedir(), '.docker')

/** True when the engine is reached over TCP with TLS verified both ways. */
export const dockerTlsOn = (config: Config) => config.DOCKER_TLS_VERIFY && config.DOCKER_HOST.startsWith('tcp://')

/** Reads and checks the three files now; throws ConfigError naming DOCKER_CERT_PATH. */
export function readDockerTls(dir: string): DockerTls {
  const { cert, key } = readKeyPair({ cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, 'DOCKER_CERT_PATH')
  const ca = readCertificates('DOCKER_CERT_PATH', join(dir, 'ca.pem')).pem
  return { ca, cert, key }
}

/**
 * The binding: undefined unless DOCKER_TLS_VERIFY and a tcp:// DOCKER_HOST; otherwise the files,
 * re-read on every call (an unlock is rare and the files may be rotated), checked once at start.
 */
export function createDockerTls(config: Config): () => Promise<DockerTls | undefined> {
  if (!dockerTlsOn(config)) return async () => undefined
  const dir = dockerCertPath(config)
  readDockerTls(dir)
  return async () => readDockerTls(dir)
}
