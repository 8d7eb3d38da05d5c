import { Type } from 'typebox';
import { ROLES } from '../../services/access.js';

export { WorkspaceSchema } from '../auth/schemas.js';
export { ListQuery, PageOf } from '../keys/schemas.js';

/** `{id}` of a workspace route. */
export const WorkspaceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** `{id}/members/{user_id}`. */
export const MemberParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  user_id: Type.String({ minLength: 1, maxLength: 64 }),
});

/** A workspace name. */
export const WorkspaceName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });

/** A role. */
export const RoleSchema = Type.Enum(ROLES);

/** A member of a workspace. */
export const MemberSchema = Type.Object({
  user_id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  created_at: Type.String({ format: 'date-time' }),
});
