// The one MSW server of the unit project, composed from one handler file per upstream.
import { setupServer } from 'msw/node'

export const server = setupServer()
