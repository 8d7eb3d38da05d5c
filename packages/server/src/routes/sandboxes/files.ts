import { isRuntimeError } from '@corral/runtime';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import type { Role } from '../../services/access.js';
import {
  absolutePath,
  attachmentName,
  checkDeclaredLength,
  fileView,
  parseMode,
  parseRange,
  RawBody,
  SANDBOX_HOME,
  withLimitedBody,
} from '../../services/sandboxes/files.js';
import { DiffSchema, gitDiff, parseUnifiedDiff } from '../../services/sandboxes/git.js';
import { requireState } from '../../services/sandboxes/states.js';
import { SandboxParams, SECURITY } from './schemas.js';

const SandboxPath = Type.String({
  minLength: 1,
  maxLength: 4096,
  description: `Absolute, or relative to ${SANDBOX_HOME}. Resolved inside the sandbox: \`..\` stops at its root.`,
});
const PathQuery = Type.Object({ path: SandboxPath }, { additionalProperties: false });
const DirQuery = Type.Object({ path: Type.Optional(SandboxPath) }, { additionalProperties: false });

const FileSchema = Type.Object({
  name: Type.String(),
  path: Type.String({ description: 'Absolute path inside the sandbox.' }),
  type: Type.Union([
    Type.Literal('file'),
    Type.Literal('directory'),
    Type.Literal('symlink'),
    Type.Literal('other'),
  ]),
  size: Type.Integer({ description: 'Bytes (of the link itself for a symlink).' }),
  mode: Type.String({
    pattern: '^[0-7]{4}$',
    description: 'Permission bits as 4 octal digits, e.g. "0644".',
  }),
  mtime: Type.String({ format: 'date-time' }),
});

const Binary = (description: string, type = 'application/octet-stream') => ({
  description,
  content: { [type]: { schema: { type: 'string', format: 'binary' } } },
});

/**
 * Files of a sandbox (API.md "Sandboxes"): list, read (with Range), write (streamed, capped at
 * `fileUploadLimitBytes`), delete, mkdir, move, tar archives both ways and `git diff`. Any
 * member reads; developers and up write. The sandbox must be running (409 INVALID_STATE).
 */
export function registerSandboxFilesRoutes(app: App): void {
  const sandboxes = app.sandboxes;

  /** The sandbox if the caller has `minRole` in its workspace and it is running. */
  const running = async (request: FastifyRequest, id: string, minRole: Role) => {
    const row = await sandboxes.load(request, id, minRole);
    requireState(row.status, 'files');
    return row;
  };

  app.get(
    '/v1/sandboxes/:id/files',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: `List a directory (default ${SANDBOX_HOME}), sorted by name`,
        security: SECURITY,
        params: SandboxParams,
        querystring: DirQuery,
        response: { 200: Type.Object({ data: Type.Array(FileSchema) }) },
      },
    },
    async (request) => {
      const row = await running(request, request.params.id, 'viewer');
      const entries = await sandboxes.runtime.files.list(row.id, request.query.path ?? SANDBOX_HOME);
      return { data: entries.map(fileView) };
    },
  );

  const readSchema = {
    tags: ['sandboxes'],
    security: SECURITY,
    params: SandboxParams,
    querystring: PathQuery,
  };

  /** GET and HEAD of a file's content; HEAD answers the same headers without reading the file. */
  const readContent = async (
    request: FastifyRequest<{ Params: { id: string }; Querystring: { path: string } }>,
    reply: FastifyReply,
  ) => {
    const row = await running(request, request.params.id, 'viewer');
    const files = sandboxes.runtime.files;
    const info = await files.stat(row.id, request.query.path);
    if (info.type === 'directory') {
      throw apiError('BAD_REQUEST', { path: info.path }, `${info.path} is a directory`);
    }
    // A symlink's own size says nothing of its target: its bytes go out whole, chunked.
    const sized = info.type === 'file';
    const range = sized ? parseRange(request.headers.range, info.size) : null;
    reply.type('application/octet-stream').header('accept-ranges', sized ? 'bytes' : 'none');
    if (range) {
      reply
        .code(206)
        .header('content-range', `bytes ${range.start}-${range.end}/${info.size}`)
        .header('content-length', range.end - range.start + 1);
    } else if (sized) {
      reply.header('content-length', info.size);
    }
    if (request.method === 'HEAD') return reply.send();
    return reply.send(await files.read(row.id, info.path, range ?? undefined));
  };

  app.get(
    '/v1/sandboxes/:id/files/content',
    {
      config: { scope: 'sandbox:read' },
      // Fastify's own HEAD would read the whole file and throw it away: ours only stats it.
      exposeHeadRoute: false,
      schema: {
        ...readSchema,
        summary: 'Read a file: raw bytes, streamed',
        description:
          'Supports one `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` (206 with Content-Range); ' +
          'several ranges are ignored (200, whole file). A range that cannot be satisfied is ' +
          '400 BAD_REQUEST `{range, size}` (the API has no 416). A directory is 400.',
        response: { 200: Binary('The whole file'), 206: Binary('The requested range') },
      },
    },
    readContent,
  );

  app.head(
    '/v1/sandboxes/:id/files/content',
    {
      config: { scope: 'sandbox:read' },
      schema: { ...readSchema, summary: "A file's size and headers, without its bytes" },
    },
    readContent,
  );

  app.delete(
    '/v1/sandboxes/:id/files',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Remove a file or directory',
        description: 'A non-empty directory needs `recursive=true`; without it the answer is 409 CONFLICT.',
        security: SECURITY,
        params: SandboxParams,
        querystring: Type.Object(
          { path: SandboxPath, recursive: Type.Optional(Type.Boolean({ default: false })) },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await running(request, request.params.id, 'developer');
      const path = absolutePath(request.query.path);
      const recursive = request.query.recursive === true;
      await sandboxes.runtime.files
        .remove(row.id, request.query.path, { recursive })
        .catch((err: unknown) => {
          if (isRuntimeError(err, 'IS_A_DIRECTORY') && !recursive) {
            throw apiError(
              'CONFLICT',
              { path, reason: 'directory_not_empty' },
              `${path} is a non-empty directory (use recursive=true)`,
            );
          }
          throw err;
        });
      await sandboxes.record(request, row, 'sandbox.files.delete', { path, recursive });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/sandboxes/:id/files/mkdir',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Create a directory with its parents (an existing directory is fine)',
        security: SECURITY,
        params: SandboxParams,
        body: Type.Object({ path: SandboxPath }, { additionalProperties: false }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await running(request, request.params.id, 'developer');
      await sandboxes.runtime.files.mkdir(row.id, request.body.path);
      await sandboxes.record(request, row, 'sandbox.files.mkdir', { path: absolutePath(request.body.path) });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/sandboxes/:id/files/move',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Move or rename a file or directory',
        description: "The target's parent must exist; a non-empty directory is not replaced (409 CONFLICT).",
        security: SECURITY,
        params: SandboxParams,
        body: Type.Object({ from: SandboxPath, to: SandboxPath }, { additionalProperties: false }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await running(request, request.params.id, 'developer');
      const { from, to } = request.body;
      await sandboxes.runtime.files.move(row.id, from, to);
      await sandboxes.record(request, row, 'sandbox.files.move', {
        from: absolutePath(from),
        to: absolutePath(to),
      });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/sandboxes/:id/files/archive',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Download a directory tree as tar.gz, streamed',
        security: SECURITY,
        params: SandboxParams,
        querystring: PathQuery,
        response: { 200: Binary('A gzip-compressed tar of the tree', 'application/gzip') },
      },
    },
    async (request, reply) => {
      const row = await running(request, request.params.id, 'viewer');
      const path = absolutePath(request.query.path);
      const stream = await sandboxes.runtime.files.tarOut(row.id, request.query.path, { gzip: true });
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="${attachmentName(path, '.tar.gz')}"`)
        .send(stream);
    },
  );

  app.get(
    '/v1/sandboxes/:id/git/diff',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: 'The git diff of a repository in the sandbox',
        description:
          '`git diff HEAD` of the work tree at `path` (default the home directory), paths relative ' +
          'to it, plus each untracked, not ignored file as added. `text/plain` by default; ' +
          '`format=json` gives one entry per file. Not inside a repository: 400 BAD_REQUEST.',
        security: SECURITY,
        params: SandboxParams,
        querystring: Type.Object(
          {
            path: Type.Optional(SandboxPath),
            format: Type.Optional(
              Type.Union([Type.Literal('text'), Type.Literal('json')], { default: 'text' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: {
            description: 'The unified diff (text), or its files (format=json)',
            content: {
              'text/plain': { schema: Type.String() },
              'application/json': { schema: DiffSchema },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const row = await running(request, request.params.id, 'viewer');
      const dir = absolutePath(request.query.path ?? SANDBOX_HOME);
      const text = await gitDiff(sandboxes.runtime, row.id, dir, sandboxes.config.execOutputLimitBytes);
      if (request.query.format === 'json') return { files: parseUnifiedDiff(text) };
      return reply.type('text/plain; charset=utf-8').send(text);
    },
  );

  // Uploads take the raw body, whatever its type, in a context of their own (the JSON routes
  // above keep the app's JSON-only parsing and its body limit).
  void app.register(async (scope) => registerUploadRoutes(scope as App));
}

/** `PUT …/files/content` and `PUT …/files/archive`: raw bodies, streamed, capped. */
function registerUploadRoutes(app: App): void {
  const sandboxes = app.sandboxes;
  app.removeAllContentTypeParsers();
  // No parsing and no body limit here: the handler streams the body and counts it instead.
  app.addContentTypeParser('*', (_request, payload, done) => done(null, new RawBody(payload)));

  const bodyOf = (request: FastifyRequest) => (request.body instanceof RawBody ? request.body.stream : null);
  // A refused upload (too large, bad archive, no access …) is not read to its end: close the
  // connection after the answer rather than read or leave the rest on it.
  app.addHook('onSend', async (_request, reply) => {
    if (reply.statusCode >= 400) reply.header('connection', 'close');
  });

  app.put(
    '/v1/sandboxes/:id/files/content',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Write a file from the raw body (any Content-Type), streamed',
        description:
          'Creates parent directories; replaces an existing file atomically (temp file + rename). ' +
          '`mode` (octal, e.g. 0755) sets the permissions, else the old file keeps its own (new: 0644). ' +
          'Larger than the upload limit: 413 PAYLOAD_TOO_LARGE, and no file is written. Answers 201.',
        security: SECURITY,
        params: SandboxParams,
        querystring: Type.Object(
          { path: SandboxPath, mode: Type.Optional(Type.String({ pattern: '^[0-7]{3,4}$' })) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ path: Type.String(), size: Type.Integer() }) },
      },
    },
    async (request, reply) => {
      const row = await sandboxes.load(request, request.params.id, 'developer');
      requireState(row.status, 'files');
      const limitBytes = sandboxes.config.fileUploadLimitBytes;
      checkDeclaredLength(request.headers, limitBytes);
      const mode = parseMode(request.query.mode);
      const path = absolutePath(request.query.path);
      const files = sandboxes.runtime.files;
      const { result: size } = await withLimitedBody(bodyOf(request), limitBytes, (data) =>
        files.write(row.id, request.query.path, data, mode === undefined ? {} : { mode }),
      );
      await sandboxes.record(request, row, 'sandbox.files.write', { path, size });
      return reply.code(201).send({ path, size });
    },
  );

  app.put(
    '/v1/sandboxes/:id/files/archive',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Unpack a tar (plain or gzip, detected from its bytes) under a directory',
        description:
          'The directory is created if missing. An entry that would land outside it (`../`, ' +
          'absolute, or through a symlink) refuses the whole archive with 400 and writes nothing. ' +
          'Larger than the upload limit: 413 PAYLOAD_TOO_LARGE.',
        security: SECURITY,
        params: SandboxParams,
        querystring: PathQuery,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await sandboxes.load(request, request.params.id, 'developer');
      requireState(row.status, 'files');
      const limitBytes = sandboxes.config.fileUploadLimitBytes;
      checkDeclaredLength(request.headers, limitBytes);
      const path = absolutePath(request.query.path);
      const { bytes } = await withLimitedBody(bodyOf(request), limitBytes, (data) =>
        sandboxes.runtime.files.tarIn(row.id, request.query.path, data),
      );
      await sandboxes.record(request, row, 'sandbox.files.upload_archive', { path, bytes });
      return reply.code(204).send(null);
    },
  );
}
