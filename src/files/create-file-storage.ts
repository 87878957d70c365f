import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import type { FileStorage } from './file-storage.ts';
import { LocalFileStorage } from './local-file-storage.ts';
import { S3FileStorage } from './s3-file-storage.ts';

/** The one place the file storage backend is chosen, from config alone (Centrifugo engine.go). */
export function createFileStorage(config: Readonly<Config>): FileStorage {
  const { s3 } = config.files;
  if (config.files.kind === 's3' && s3) return new S3FileStorage(s3);
  return new LocalFileStorage(join(config.dataDir, 'files'));
}
