import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import {
  AdminUpdateUserBody,
  ChangePasswordBody,
  ListUsersQuery,
  PresenceEntry,
  RoleParams,
  UpdateProfileBody,
  UpdateStatusBody,
  User,
  UserIdParams,
  UserList,
} from './users.schemas.ts';
import type { UsersService } from './users.service.ts';

const tags = ['users'];
const PageQuery = Type.Pick(ListUsersQuery, ['cursor', 'limit', 'q']);

/** /users: directory, profile, presence status, admin changes. */
export const usersRoutes: FastifyPluginAsyncTypebox<{ users: UsersService }> = async (app, { users }) => {
  app.get('/users/me', {
    schema: { tags, summary: 'The calling user', response: { 200: User, ...authErrors } },
    handler: (req, reply) => {
      reply.send(users.me(req.principal));
    },
  });
  app.patch('/users/me', {
    schema: { tags, summary: 'Update your profile', body: UpdateProfileBody, response: { 200: User, ...authErrors } },
    handler: async (req) => users.updateProfile(req.principal, req.body),
  });
  app.put('/users/me/password', {
    schema: { tags, summary: 'Change your password (other sessions are revoked)', body: ChangePasswordBody, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await users.changePassword(req.principal, req.body.current_password, req.body.new_password);
      return reply.status(204).send(null);
    },
  });
  app.put('/users/status', {
    schema: { tags, summary: 'Set your presence status (online, away, dnd, offline) and status text', body: UpdateStatusBody, response: { 200: User, ...authErrors } },
    handler: async (req) => users.updateStatus(req.principal, req.body),
  });
  app.get('/users', {
    schema: { tags, summary: 'List the organization’s users (filters, cursor pagination)', querystring: ListUsersQuery, response: { 200: UserList, ...authErrors } },
    handler: async (req) => users.list(req.principal, req.query),
  });
  app.get('/users/active', {
    schema: { tags, summary: 'Users that are not deactivated', querystring: PageQuery, response: { 200: UserList, ...authErrors } },
    handler: async (req) => users.list(req.principal, { ...req.query, active: true }),
  });
  app.get('/users/presence', {
    schema: { tags, summary: 'Users currently online, away or dnd', response: { 200: Type.Object({ data: Type.Array(PresenceEntry) }), ...authErrors } },
    handler: async (req) => ({
      data: (await users.presence(req.principal)).map((u) => ({ user_id: u.id, username: u.username, name: u.name, status: u.status, status_text: u.status_text, last_seen_at: u.last_seen_at })),
    }),
  });
  app.get('/users/role/:role', {
    schema: { tags, summary: 'Users with a role', params: RoleParams, querystring: PageQuery, response: { 200: UserList, ...authErrors } },
    handler: async (req) => users.list(req.principal, { ...req.query, role: req.params.role }),
  });
  app.get('/users/:id', {
    schema: { tags, summary: 'One user', params: UserIdParams, response: { 200: User, ...authErrors } },
    handler: async (req) => users.get(req.principal, req.params.id),
  });
  app.patch('/users/:id', {
    schema: { tags, summary: 'Admin: change role, activate or deactivate (revokes sessions), rename', params: UserIdParams, body: AdminUpdateUserBody, response: { 200: User, ...authErrors } },
    handler: async (req) => users.adminUpdate(req.principal, req.params.id, req.body),
  });
};
