import { Type } from 'typebox';

/** The body of every error response (see error-handler.ts). */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable, machine-readable, e.g. auth.invalid_credentials' }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
    request_id: Type.String(),
  },
  { $id: 'ErrorBody' },
);

const ref = Type.Unsafe<unknown>({ $ref: 'ErrorBody#' });

/** Error responses to document on authenticated routes. */
export const authErrors = { 400: ref, 401: ref, 403: ref, 404: ref, 429: ref } as const;
export const errorsWith = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ref]));

export const NoContent = Type.Null({ description: 'No content' });
