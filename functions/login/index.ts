// F1: POST /login — logs the device in to the Resource API for this user.
import { defineFunction } from '../../shared/contract/function'
import { json, readJson } from '../../shared/http/json'
import { performLogin } from '../../shared/upstream/login'
import { LoginBody } from '../../shared/http/login-body'

export default defineFunction({
  name: 'login',
  routes: [{ method: 'POST', path: '/login', rateLimited: true }],
  async fetch(request, env) {
    const { email, password } = await readJson(request, LoginBody)
    const auth = await performLogin(env, email, password)
    return json({ status: 'ok', email: auth.user.email, role: auth.user.role })
  },
})
