import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import {
  AddMemberBody,
  Conversation,
  ConversationList,
  CreateChannelBody,
  IdParams,
  ListChannelsQuery,
  Member,
  MemberList,
  MemberRoleBody,
  MemberParams,
  OpenDmBody,
  UpdateChannelBody,
  UserIdParams,
} from './conversations.schemas.ts';
import type { ConversationsService } from './conversations.service.ts';

const tags = ['channels'];

/** /channels (any conversation id works where a channel id is asked) and /dm. */
export const conversationsRoutes: FastifyPluginAsyncTypebox<{ conversations: ConversationsService }> = async (app, { conversations: svc }) => {
  app.get('/channels', {
    schema: { tags, summary: 'Channels you can see: public ones and your private ones', querystring: ListChannelsQuery, response: { 200: ConversationList, ...authErrors } },
    handler: async (req) => svc.listChannels(req.principal, req.query, false),
  });
  app.get('/channels/joined', {
    schema: { tags, summary: 'Channels you are a member of', querystring: ListChannelsQuery, response: { 200: ConversationList, ...authErrors } },
    handler: async (req) => svc.listChannels(req.principal, req.query, true),
  });
  app.post('/channels', {
    schema: { tags, summary: 'Create a public or private channel; you become its owner', body: CreateChannelBody, response: { 201: Conversation, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await svc.createChannel(req.principal, req.body)),
  });
  app.get('/channels/:id', {
    schema: { tags, summary: 'One conversation', params: IdParams, response: { 200: Conversation, ...authErrors } },
    handler: async (req) => svc.get(req.principal, req.params.id),
  });
  app.put('/channels/:id', {
    schema: { tags, summary: 'Rename, set topic or purpose (owners and admins)', params: IdParams, body: UpdateChannelBody, response: { 200: Conversation, ...authErrors } },
    handler: async (req) => svc.update(req.principal, req.params.id, req.body),
  });
  app.delete('/channels/:id', {
    schema: { tags, summary: 'Delete a channel and its history (owner or org admin)', params: IdParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await svc.delete(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
  for (const [path, archived] of [['archive', true], ['unarchive', false]] as const) {
    app.post(`/channels/:id/${path}`, {
      schema: { tags, summary: archived ? 'Archive (read-only from now on)' : 'Unarchive', params: IdParams, response: { 200: Conversation, ...authErrors } },
      handler: async (req) => svc.setArchived(req.principal, req.params.id, archived),
    });
  }
  app.post('/channels/:id/join', {
    schema: { tags, summary: 'Join a public channel', params: IdParams, response: { 200: Conversation, ...authErrors } },
    handler: async (req) => svc.join(req.principal, req.params.id),
  });
  app.post('/channels/:id/leave', {
    schema: { tags, summary: 'Leave a channel or group', params: IdParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await svc.leave(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.get('/channels/:id/members', {
    schema: { tags, summary: 'Members', params: IdParams, response: { 200: MemberList, ...authErrors } },
    handler: async (req) => ({ data: await svc.listMembers(req.principal, req.params.id) }),
  });
  app.post('/channels/:id/members', {
    schema: { tags, summary: 'Add a member (members can; choosing role admin needs owner or admin)', params: IdParams, body: AddMemberBody, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await svc.addMember(req.principal, req.params.id, req.body.user_id, req.body.role);
      return reply.status(204).send(null);
    },
  });
  app.delete('/channels/:id/members/:userId', {
    schema: { tags, summary: 'Remove a member (owners and admins; yourself: leave)', params: MemberParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await svc.removeMember(req.principal, req.params.id, req.params.userId);
      return reply.status(204).send(null);
    },
  });
  app.patch('/channels/:id/members/:userId', {
    schema: { tags, summary: 'Change a member’s role (owners and admins; owners only make or unmake owners)', params: MemberParams, body: MemberRoleBody, response: { 200: Member, ...authErrors } },
    handler: async (req) => svc.setMemberRole(req.principal, req.params.id, req.params.userId, req.body.role),
  });
  app.post('/dm', {
    schema: { tags: ['direct messages'], summary: 'Open the direct conversation with a user (existing or new), or a group of 3 to 8', body: OpenDmBody, response: { 200: Conversation, 201: Conversation, ...authErrors } },
    handler: async (req, reply) => {
      const { conversation, created } = await svc.open(req.principal, req.body);
      return reply.status(created ? 201 : 200).send(conversation);
    },
  });
  app.get('/dm/:userId', {
    schema: { tags: ['direct messages'], summary: 'The direct conversation with a user', params: UserIdParams, response: { 200: Conversation, ...authErrors } },
    handler: async (req) => svc.getDirect(req.principal, req.params.userId),
  });
};
