import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../platform/errors.ts';
import { errorsWith } from '../../transport/http/schemas.ts';
import { FileInfo, FileParams } from './files.schemas.ts';
import { fileTooLarge, type FilesService } from './files.service.ts';
import { contentDisposition, isInline, parseRange, servedContentType } from './serving.ts';

const tags = ['files'];
/** Room for the multipart framing around the file (boundaries, part headers, a few small fields). */
const MULTIPART_OVERHEAD = 64 * 1024;

/**
 * POST /upload and GET /files/:id. Multipart parsing is registered here only, so no other route
 * accepts multipart bodies.
 */
export const filesRoutes: FastifyPluginAsyncTypebox<{ files: FilesService }> = async (app, { files }) => {
  await app.register(multipart, {
    // One byte over the limit reaches the service, which turns it into 413 file.too_large.
    limits: { fileSize: files.maxBytes + 1, files: 1, fields: 10, fieldSize: 1024, parts: 12, headerPairs: 50 },
    throwFileSizeLimit: false,
  });

  app.post('/upload', {
    schema: {
      tags,
      summary: 'Upload a file (multipart/form-data, one file part); its type is sniffed from the bytes',
      consumes: ['multipart/form-data'],
      response: { 201: FileInfo, ...errorsWith(400, 401, 403, 413, 415, 429) },
    },
    handler: async (req, reply) => {
      if (!req.isMultipart()) throw new AppError('request.unsupported_media_type', 'Send the file as multipart/form-data');
      // Refuse a body that says up front that it is too large, before reading any of it.
      if (Number(req.headers['content-length'] ?? 0) > files.maxBytes + MULTIPART_OVERHEAD) throw fileTooLarge(files.maxBytes);
      const part = await req.file();
      if (!part) throw new AppError('validation.failed', 'The form has no file', { fields: [{ field: '/body/file', message: 'a file part is required' }] });
      const file = await files.upload(req.principal, { filename: part.filename, stream: part.file });
      return reply.status(201).send(file);
    },
  });

  app.get('/files/:id', {
    schema: {
      tags,
      summary: 'Download a file (its uploader, or anyone who can read a message carrying it); Range supported',
      params: FileParams,
      response: errorsWith(400, 401, 403, 404, 416, 429),
    },
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const f = await files.requireReadable(req.principal, req.params.id);
      const size = Number(f.size);
      const etag = `"${f.sha256}"`;
      const common = { etag, 'cache-control': 'private, no-cache', 'accept-ranges': 'bytes', 'x-content-type-options': 'nosniff' };
      if (matchesEtag(req.headers['if-none-match'], etag)) return reply.status(304).headers(common).send();
      // If-Range with another validator: the file changed since, send all of it.
      const ifRange = req.headers['if-range'];
      const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, size) : null;
      if (range === 'unsatisfiable') {
        reply.header('content-range', `bytes */${size}`);
        throw new AppError('file.range_not_satisfiable', 'The requested range is outside the file', { size });
      }
      const { stream } = await files.openContent(f, range ?? undefined);
      reply.headers({
        ...common,
        'content-type': servedContentType(f.content_type),
        'content-disposition': contentDisposition(isInline(f.content_type) ? 'inline' : 'attachment', f.filename),
        // Even if something renders it, it runs in a sandbox with no scripts, forms or plugins.
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
        'content-length': String(range ? range.end - range.start + 1 : size),
      });
      if (range) reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`);
      return reply.send(stream);
    },
  });
};

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.trim() === '*' || header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
