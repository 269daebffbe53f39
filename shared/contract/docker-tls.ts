// The TLS material of a Docker engine reached over tcp:// with DOCKER_TLS_VERIFY (read by the runtime).
/** PEM texts from DOCKER_CERT_PATH: the CA that signs the engine, and the loader's client pair. */
export interface DockerTls {
  ca: string
  cert: string
  key: string
}
