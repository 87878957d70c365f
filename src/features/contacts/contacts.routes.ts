import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors } from '../../transport/http/schemas.ts';
import { Contact, ContactList, ContactParams, CreateContactBody, ListContactsQuery, MergeContactBody, UpdateContactBody } from './contacts.schemas.ts';
import type { ContactsService } from './contacts.service.ts';

const tags = ['contacts'];

/** /contacts: the people of support conversations (staff only). */
export const contactsRoutes: FastifyPluginAsyncTypebox<{ contacts: ContactsService }> = async (app, { contacts }) => {
  app.get('/contacts', {
    schema: { tags, summary: 'List or search contacts (name, email or phone in any form)', querystring: ListContactsQuery, response: { 200: ContactList, ...authErrors } },
    handler: async (req) => contacts.list(req.principal, req.query),
  });
  app.post('/contacts', {
    schema: { tags, summary: 'Create a contact (phone validated, stored in E.164)', body: CreateContactBody, response: { 201: Contact, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await contacts.create(req.principal, req.body)),
  });
  app.get('/contacts/:id', {
    schema: { tags, summary: 'A contact with its identities per inbox', params: ContactParams, response: { 200: Contact, ...authErrors } },
    handler: async (req) => contacts.get(req.principal, req.params.id),
  });
  app.patch('/contacts/:id', {
    schema: { tags, summary: 'Update a contact; custom attributes merge (null removes one)', params: ContactParams, body: UpdateContactBody, response: { 200: Contact, ...authErrors } },
    handler: async (req) => contacts.update(req.principal, req.params.id, req.body),
  });
  app.post('/contacts/:id/merge', {
    schema: { tags, summary: 'Merge another contact into this one (identities and conversations move)', params: ContactParams, body: MergeContactBody, response: { 200: Contact, ...authErrors } },
    handler: async (req) => contacts.merge(req.principal, req.params.id, req.body.from_id),
  });
};
