import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Server, type S3Server } from '../../test/helpers/s3-server.ts';
import { fileStorageContract } from './file-storage.contract.ts';
import { LocalFileStorage } from './local-file-storage.ts';
import { S3FileStorage } from './s3-file-storage.ts';

let dir = '';
fileStorageContract('local', {
  make: async () => new LocalFileStorage((dir = await mkdtemp(join(tmpdir(), 'parley-files-')))),
  stop: () => rm(dir, { recursive: true, force: true }),
});

let s3: S3Server | undefined;
fileStorageContract('s3 (s3rver)', {
  make: async () => {
    s3 = await startS3Server();
    return new S3FileStorage({
      bucket: s3.bucket,
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
      prefix: 'contract/',
    });
  },
  stop: async () => s3?.stop(),
});
