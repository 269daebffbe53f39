// F1: POST /login — logs the device in to the Resource API for this user.
import type { LoaderFunction } from '../../shared/function'
import { json, readJson } from '../../shared/json'
import { performLogin } from '../../shared/login-flow'
import { LoginBody } from '../../shared/login-body'

export default {
  name: 'login',
  routes: [{ method: 'POST', path: '/login', rateLimited: true }],
  async fetch(request, env) {
    const { email, password } = await readJson(request, LoginBody)
    const auth = await performLogin(env, email, password)
    return json({ status: 'ok', email: auth.user.email, role: auth.user.role })
  },
} satisfies LoaderFunction
