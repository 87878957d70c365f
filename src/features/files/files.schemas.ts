import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

export const FileInfo = Type.Object({
  id: Type.String(),
  filename: Type.String({ description: 'as uploaded, without any folder' }),
  content_type: Type.String({ description: 'sniffed from the bytes at upload, never taken from the client' }),
  size: Type.Integer({ description: 'bytes' }),
  sha256: Type.String({ description: 'lower-case hex; also the download’s ETag' }),
  width: Nullable(Type.Integer({ description: 'pixels, for PNG, JPEG, GIF and WebP images' })),
  height: Nullable(Type.Integer()),
  created_at: Type.String(),
  url: Type.String({ description: 'where to download it: /api/v1/files/:id' }),
});
export type FileDto = Static<typeof FileInfo>;

export const FileParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

/** At most this many files ride on one message. */
export const MAX_ATTACHMENTS = 10;

export const AttachmentIds = Type.Array(Type.String({ format: 'uuid' }), {
  maxItems: MAX_ATTACHMENTS,
  description: 'ids of files you uploaded (POST /upload), shown in this order',
});
