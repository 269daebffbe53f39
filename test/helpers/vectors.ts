// The test vectors of crypto.md §7 (test fixtures: the only place salts are written down).
export const SALTS = {
  HARDWARE_SALT: 'hw-salt-for-tests',
  API_KEY_SALT: 'api-salt-for-tests',
  RESOURCE_KEY_SALT: 'resource-salt-for-tests',
}
export const FINGERPRINT = 'CPU: Test CPU 8-Core. GPU: Test GPU. Memory: 8589934592. DriveSerial: SN-0001'
export const EMAIL = 'user@example.com'
export const PASSWORD = 's3cret-pass'
export const KEY_FRAGMENT = 'fragment-0123456789'
