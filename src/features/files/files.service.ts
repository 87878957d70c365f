import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import { requireUser, type Principal } from '../../access/access.ts';
import type { ByteRange, FileStorage, StoredObject } from '../../files/file-storage.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { newId } from '../../platform/ids.ts';
import type { ConversationsService } from '../conversations/conversations.service.ts';
import type { FileRow, FilesRepo } from './files.repo.ts';
import type { FileDto } from './files.schemas.ts';
import { cleanFilename } from './serving.ts';
import { imageDimensions, sniffContentType, SNIFF_BYTES } from './sniff.ts';
import { UploadProbe } from './upload-probe.ts';

const notFound = () => new AppError('file.not_found', 'File not found');

export function fileTooLarge(maxBytes: number): AppError {
  return new AppError('file.too_large', `The file is larger than ${maxBytes} bytes`, { max_bytes: maxBytes });
}

export function toFileDto(f: FileRow): FileDto {
  return {
    id: f.id,
    filename: f.filename,
    content_type: f.content_type,
    size: Number(f.size),
    sha256: f.sha256,
    width: f.width,
    height: f.height,
    created_at: f.created_at,
    url: `/api/v1/files/${f.id}`,
  };
}

/**
 * Uploads, downloads and the files riding on messages.
 *
 * Who may download a file: its uploader, and whoever can read (ConversationsService.requireConversation)
 * a conversation where a message that is not deleted carries it. Everyone else gets the same 404
 * as for a missing id. Files are never deleted here: a file stays while its uploader exists, so
 * deleting one of several messages that carry it never loses it (SECURITY.md K).
 */
export class FilesService {
  constructor(
    private readonly repo: FilesRepo,
    private readonly storage: FileStorage,
    private readonly conversations: ConversationsService,
    private readonly clock: Clock,
    /** The largest upload accepted, in bytes. */
    readonly maxBytes: number,
  ) {}

  /**
   * Store an upload of the calling user: streamed to the file storage while it is counted, hashed
   * and its first bytes kept; the type is sniffed from those bytes. Over the limit, nothing stays
   * stored and the answer is 413 file.too_large.
   */
  async upload(p: Principal, input: { filename: string; stream: Readable }): Promise<FileDto> {
    const userId = requireUser(p);
    const id = newId();
    const key = `${p.orgId}/${id}`;
    const probe = new UploadProbe(this.maxBytes, SNIFF_BYTES);
    try {
      await this.storage.put(key, pipeline(input.stream, probe, () => undefined));
    } catch (err) {
      // When the storage failed (not the body), stop reading the upload too: the pipeline then
      // releases the request instead of leaving it paused.
      probe.destroy();
      await this.storage.delete(key).catch(() => undefined);
      if (probe.tooLarge) throw fileTooLarge(this.maxBytes);
      throw err;
    }
    const { size, sha256, head } = probe.result();
    const contentType = await sniffContentType(head);
    const dims = imageDimensions(contentType, head);
    const row: FileRow = {
      id,
      org_id: p.orgId,
      uploader_id: userId,
      storage_key: key,
      filename: cleanFilename(input.filename),
      content_type: contentType,
      size,
      sha256,
      width: dims?.width ?? null,
      height: dims?.height ?? null,
      created_at: isoNow(this.clock),
    };
    try {
      await this.repo.create(row);
    } catch (err) {
      await this.storage.delete(key).catch(() => undefined);
      throw err;
    }
    return toFileDto(row);
  }

  /**
   * Store bytes a platform sent (inbound media, already downloaded and size-capped by the media
   * fetcher): the type is sniffed from the bytes, never taken from the platform; no uploader (the
   * file is readable through the conversations whose messages carry it).
   */
  async storeFromPlatform(orgId: string, input: { filename: string; bytes: Buffer }): Promise<FileDto> {
    const id = newId();
    const key = `${orgId}/${id}`;
    const head = input.bytes.subarray(0, SNIFF_BYTES);
    const contentType = await sniffContentType(head);
    const dims = imageDimensions(contentType, head);
    const row: FileRow = {
      id,
      org_id: orgId,
      uploader_id: null,
      storage_key: key,
      filename: cleanFilename(input.filename),
      content_type: contentType,
      size: input.bytes.length,
      sha256: createHash('sha256').update(input.bytes).digest('hex'),
      width: dims?.width ?? null,
      height: dims?.height ?? null,
      created_at: isoNow(this.clock),
    };
    await this.storage.put(key, input.bytes);
    try {
      await this.repo.create(row);
    } catch (err) {
      await this.storage.delete(key).catch(() => undefined);
      throw err;
    }
    return toFileDto(row);
  }

  /** The file, if the caller may download it (see the class comment); 404 file.not_found otherwise. */
  async requireReadable(p: Principal, id: string): Promise<FileRow> {
    const f = await this.repo.getById(p.orgId, id);
    if (!f) throw notFound();
    if (p.userId !== null && f.uploader_id === p.userId) return f;
    for (const conversationId of await this.repo.conversationsCarrying(p.orgId, id)) {
      try {
        await this.conversations.requireConversation(p, conversationId, 'read');
        return f;
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'conversation.not_found')) throw err;
      }
    }
    throw notFound();
  }

  /** The bytes of a file that `requireReadable` returned: all of them, or a range inside the file. */
  async openContent(f: FileRow, range?: ByteRange): Promise<StoredObject> {
    const stored = await this.storage.get(f.storage_key, range);
    // The row exists but the bytes do not: a storage fault, not the caller's.
    if (!stored) throw new AppError('internal', 'The file content is missing');
    return stored;
  }

  /**
   * The files for a new message of the calling user, in the order given (duplicates dropped):
   * each must exist in the organization and have been uploaded by the caller, else 400
   * file.invalid_attachment naming the ids (missing and foreign files look the same).
   */
  async requireAttachable(p: Principal, ids: string[]): Promise<FileDto[]> {
    const userId = requireUser(p);
    const unique = [...new Set(ids)];
    const byId = new Map((await this.repo.findMany(p.orgId, unique)).map((f) => [f.id, f]));
    const invalid = unique.filter((id) => byId.get(id)?.uploader_id !== userId);
    if (invalid.length) throw new AppError('file.invalid_attachment', 'Attach files you uploaded yourself', { file_ids: invalid });
    return unique.map((id) => toFileDto(byId.get(id)!));
  }

  /** Files by id in the given order (background jobs that stored them: no access check); missing ones left out. */
  async attachmentsByIds(orgId: string, ids: string[]): Promise<FileDto[]> {
    const byId = new Map((await this.repo.findMany(orgId, ids)).map((f) => [f.id, f]));
    return ids.filter((id) => byId.has(id)).map((id) => toFileDto(byId.get(id)!));
  }

  /** The attachments of each message (in order), for messages the caller may already read. One query. */
  async attachmentsOf(orgId: string, messageIds: string[]): Promise<Map<string, FileDto[]>> {
    const out = new Map<string, FileDto[]>();
    for (const row of await this.repo.attachmentsOf(orgId, messageIds)) {
      const list = out.get(row.message_id) ?? [];
      list.push(toFileDto(row));
      out.set(row.message_id, list);
    }
    return out;
  }

  /**
   * All the bytes of a file, for background jobs that already decided the file may go where they
   * send it (replies out: the files of a staff message). No access check here; null when the file
   * or its bytes are missing. The whole file is held in memory (uploads are capped by UPLOAD_MAX_BYTES).
   */
  async bytesOf(orgId: string, id: string): Promise<Buffer | null> {
    const f = await this.repo.getById(orgId, id);
    const stored = f ? await this.storage.get(f.storage_key) : null;
    if (!stored) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of stored.stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  close(): Promise<void> {
    return this.storage.close();
  }
}
