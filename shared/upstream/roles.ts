// The Resource API's roles: names, numbers, and who may do what (http.md).

export const ROLES = Object.freeze({ None: 0, Operator: 10, Validator: 20, CompanionPC: 30, Admin: 40, ResourceUploader: 50, ApiAdmin: 1000 } as const)

export type Role = keyof typeof ROLES

/** The canonical role for a claim value: a name in any case, or its number (as number or string). */
export function parseRole(value: unknown): Role | null {
  if (Array.isArray(value)) value = value[0]
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value.trim()))) {
    const n = Number(value)
    return (Object.keys(ROLES) as Role[]).find((r) => ROLES[r] === n) ?? null
  }
  if (typeof value !== 'string') return null
  const lower = value.trim().toLowerCase()
  return (Object.keys(ROLES) as Role[]).find((r) => r.toLowerCase() === lower) ?? null
}

/** Roles that may upload resources. */
export const UPLOAD_ROLES: readonly Role[] = Object.freeze(['Admin', 'ResourceUploader', 'ApiAdmin'])

/** May this role load resources? Any role but None. */
export const mayLoad = (role: Role) => role !== 'None'

/** May this role upload resources? */
export const mayUpload = (role: Role) => UPLOAD_ROLES.includes(role)
