/**
 * A throwaway S3-compatible server for tests: s3rver (in this process) on 127.0.0.1, a free
 * port, objects in a temp folder removed on stop. s3rver accepts its fixed credentials.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKey: string;
  readonly secretKey: string;
  /** The folder s3rver keeps the objects in (to check what is stored). */
  readonly directory: string;
  /** The environment for FILE_STORAGE=s3 against this server. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3Server(bucket = 'parley-test'): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'parley-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const creds = { accessKey: 'S3RVER', secretKey: 'S3RVER' };
  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    bucket,
    directory,
    ...creds,
    env: () => ({ FILE_STORAGE: 's3', S3_ENDPOINT: endpoint, S3_BUCKET: bucket, S3_ACCESS_KEY: creds.accessKey, S3_SECRET_KEY: creds.secretKey }),
    stop: () =>
      (stopping ??= (async () => {
        await server.close();
        await rm(directory, { recursive: true, force: true });
      })()),
  };
}
