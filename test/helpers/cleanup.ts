// Setup file of every test project: the temporary directories a test file made are removed after it.
import { afterAll } from 'vitest'
import { removeTempDirs } from './tmp'

afterAll(removeTempDirs)
