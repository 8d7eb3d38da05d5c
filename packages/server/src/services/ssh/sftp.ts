import { posix } from 'node:path';
import { type FileInfo, isRuntimeError, SANDBOX_USER_HOME } from '@corral/runtime';
import type { SFTPWrapper } from 'ssh2';
import ssh2 from 'ssh2';
import type { SshConnection } from './connection.js';
import { attrsOf, FileReader, FileWriter, longnameOf, SftpFailure } from './sftp-handles.js';

const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;

/** Handles one SFTP session may hold open at once. */
const MAX_HANDLES = 256;

/** ssh2's SFTP server has no `exit()`; these are the channel internals it would use. */
interface SftpChannelInternals {
  outgoing?: { id: number; state: string };
  _protocol?: { exitStatus(channelId: number, status: number): void };
}

type Handle =
  | { kind: 'read'; reader: FileReader; queue: Promise<void> }
  | { kind: 'write'; writer: FileWriter; queue: Promise<void> }
  | { kind: 'dir'; path: string; entries: FileInfo[] | null; queue: Promise<void> };

/** The status code for a runtime (or SFTP) error. */
function statusOf(err: unknown): { code: number; message: string } {
  if (err instanceof SftpFailure) return { code: err.status, message: err.message };
  if (isRuntimeError(err)) {
    const code =
      err.code === 'FILE_NOT_FOUND'
        ? STATUS_CODE.NO_SUCH_FILE
        : err.code === 'PERMISSION_DENIED'
          ? STATUS_CODE.PERMISSION_DENIED
          : err.code === 'UNSUPPORTED'
            ? STATUS_CODE.OP_UNSUPPORTED
            : STATUS_CODE.FAILURE;
    return { code, message: err.message };
  }
  return { code: STATUS_CODE.FAILURE, message: 'failed' };
}

/** A path as the sandbox sees it: relative ones are taken from the user's home. */
function resolvePath(path: string): string {
  return posix.resolve(SANDBOX_USER_HOME, path || '.');
}

/**
 * Serves SFTP (version 3, what OpenSSH's `sftp` and `scp` speak) on `sftp` from the sandbox's
 * filesystem through `runtime.files`, as the sandbox user: stat/lstat/fstat, directories,
 * reading (streamed) and writing (streamed into an atomic write that replaces the file on
 * close — what `put` and `scp` do; rewriting part of a file is not supported), mkdir,
 * rmdir, remove, rename, realpath. Attribute changes are accepted and ignored; links are not
 * supported. Everything open is dropped when the session ends.
 */
export function serveSftp(conn: SshConnection, sftp: SFTPWrapper): void {
  const files = conn.app.sandboxes.runtime.files;
  const id = conn.sandboxId;
  const handles = new Map<number, Handle>();
  let nextHandle = 1;

  // Every request waits for this check; a sandbox that is not running fails them all.
  const ready = conn.unavailable().then((problem) => {
    if (problem !== null) throw new SftpFailure(STATUS_CODE.FAILURE, problem);
  });
  ready.catch(() => undefined);

  const fail = (reqId: number, err: unknown) => {
    const { code, message } = statusOf(err);
    sftp.status(reqId, code, message);
  };
  /** Runs a request; errors become a status answer. */
  const run = (reqId: number, work: () => Promise<void>) => {
    conn.touch();
    ready.then(work).catch((err: unknown) => fail(reqId, err));
  };
  const ok = (reqId: number) => sftp.status(reqId, STATUS_CODE.OK);
  const handleOf = (raw: Buffer): [number, Handle] | null => {
    if (raw.length !== 4) return null;
    const key = raw.readUInt32BE(0);
    const handle = handles.get(key);
    return handle ? [key, handle] : null;
  };
  const newHandle = (handle: Handle): Buffer => {
    if (handles.size >= MAX_HANDLES) throw new SftpFailure(STATUS_CODE.FAILURE, 'too many open handles');
    const key = nextHandle++;
    handles.set(key, handle);
    const raw = Buffer.alloc(4);
    raw.writeUInt32BE(key, 0);
    return raw;
  };
  /** Runs `work` after the handle's earlier requests (in arrival order). */
  const onHandle = (reqId: number, raw: Buffer, work: (handle: Handle, key: number) => Promise<void>) => {
    const found = handleOf(raw);
    if (!found) {
      sftp.status(reqId, STATUS_CODE.FAILURE, 'invalid handle');
      return;
    }
    const [key, handle] = found;
    conn.touch();
    handle.queue = handle.queue.then(() => work(handle, key).catch((err: unknown) => fail(reqId, err)));
  };

  sftp.on('OPEN', (reqId, filename, flags, attrs) =>
    run(reqId, async () => {
      const path = resolvePath(filename);
      if (flags & OPEN_MODE.READ && flags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND))
        throw new SftpFailure(STATUS_CODE.OP_UNSUPPORTED, 'opening for reading and writing is not supported');
      if (flags & OPEN_MODE.APPEND)
        throw new SftpFailure(STATUS_CODE.OP_UNSUPPORTED, 'appending is not supported');
      if (flags & OPEN_MODE.WRITE) {
        const existing = await files.stat(id, path).catch((err: unknown) => {
          if (isRuntimeError(err, 'FILE_NOT_FOUND')) return null;
          throw err;
        });
        if (existing?.type === 'directory') throw new SftpFailure(STATUS_CODE.FAILURE, 'is a directory');
        if (existing && flags & OPEN_MODE.EXCL) throw new SftpFailure(STATUS_CODE.FAILURE, 'the file exists');
        if (!existing && !(flags & OPEN_MODE.CREAT))
          throw new SftpFailure(STATUS_CODE.NO_SUCH_FILE, 'no such file');
        // Without TRUNC too the writes replace the file: OpenSSH's scp opens without it, writes
        // the whole file from 0 and truncates at the end. Partial rewrites are not supported.
        const writer = new FileWriter(
          files,
          id,
          path,
          typeof attrs?.mode === 'number' ? attrs.mode : undefined,
        );
        sftp.handle(reqId, newHandle({ kind: 'write', writer, queue: Promise.resolve() }));
        return;
      }
      const info = await files.stat(id, path);
      if (info.type === 'directory') throw new SftpFailure(STATUS_CODE.FAILURE, 'is a directory');
      const reader = new FileReader(files, id, path);
      sftp.handle(reqId, newHandle({ kind: 'read', reader, queue: Promise.resolve() }));
    }),
  );

  sftp.on('READ', (reqId, raw, offset, length) =>
    onHandle(reqId, raw, async (handle) => {
      if (handle.kind !== 'read') throw new SftpFailure(STATUS_CODE.FAILURE, 'not open for reading');
      const data = await handle.reader.read(offset, Math.min(length, 256 * 1024));
      if (data === null) sftp.status(reqId, STATUS_CODE.EOF);
      else sftp.data(reqId, data);
    }),
  );

  sftp.on('WRITE', (reqId, raw, offset, data) =>
    onHandle(reqId, raw, async (handle) => {
      if (handle.kind !== 'write') throw new SftpFailure(STATUS_CODE.FAILURE, 'not open for writing');
      await handle.writer.write(offset, data, STATUS_CODE.OP_UNSUPPORTED);
      ok(reqId);
    }),
  );

  sftp.on('FSTAT', (reqId, raw) =>
    onHandle(reqId, raw, async (handle) => {
      if (handle.kind === 'write') {
        sftp.attrs(
          reqId,
          attrsOf({ type: 'file', mode: 0o644, size: handle.writer.size, mtime: new Date().toISOString() }),
        );
        return;
      }
      const path = handle.kind === 'read' ? handle.reader.path : handle.path;
      sftp.attrs(reqId, attrsOf(await files.stat(id, path)));
    }),
  );

  sftp.on('FSETSTAT', (reqId, raw) => onHandle(reqId, raw, async () => ok(reqId)));

  sftp.on('CLOSE', (reqId, raw) =>
    onHandle(reqId, raw, async (handle, key) => {
      handles.delete(key);
      if (handle.kind === 'read') await handle.reader.close();
      if (handle.kind === 'write') await handle.writer.close(STATUS_CODE.FAILURE);
      ok(reqId);
    }),
  );

  sftp.on('OPENDIR', (reqId, path) =>
    run(reqId, async () => {
      const dir = resolvePath(path);
      const entries = await files.list(id, dir);
      sftp.handle(reqId, newHandle({ kind: 'dir', path: dir, entries, queue: Promise.resolve() }));
    }),
  );

  sftp.on('READDIR', (reqId, raw) =>
    onHandle(reqId, raw, async (handle) => {
      if (handle.kind !== 'dir') throw new SftpFailure(STATUS_CODE.FAILURE, 'not a directory handle');
      if (handle.entries === null) {
        sftp.status(reqId, STATUS_CODE.EOF);
        return;
      }
      const entries = handle.entries;
      handle.entries = null;
      sftp.name(
        reqId,
        entries.map((entry) => ({
          filename: entry.name,
          longname: longnameOf(entry),
          attrs: attrsOf(entry),
        })),
      );
    }),
  );

  const statPath = (reqId: number, path: string) =>
    run(reqId, async () => {
      sftp.attrs(reqId, attrsOf(await files.stat(id, resolvePath(path))));
    });
  sftp.on('STAT', statPath);
  sftp.on('LSTAT', statPath);

  sftp.on('REALPATH', (reqId, path) =>
    run(reqId, async () => {
      const resolved = resolvePath(path);
      sftp.name(reqId, [{ filename: resolved, longname: resolved, attrs: {} as never }]);
    }),
  );

  sftp.on('MKDIR', (reqId, path) =>
    run(reqId, async () => {
      const dir = resolvePath(path);
      const existing = await files.stat(id, dir).catch(() => null);
      if (existing) throw new SftpFailure(STATUS_CODE.FAILURE, 'the path exists');
      await files.mkdir(id, dir);
      ok(reqId);
    }),
  );

  sftp.on('RMDIR', (reqId, path) =>
    run(reqId, async () => {
      const dir = resolvePath(path);
      if ((await files.stat(id, dir)).type !== 'directory')
        throw new SftpFailure(STATUS_CODE.FAILURE, 'not a directory');
      await files.remove(id, dir);
      ok(reqId);
    }),
  );

  sftp.on('REMOVE', (reqId, path) =>
    run(reqId, async () => {
      const file = resolvePath(path);
      if ((await files.stat(id, file)).type === 'directory')
        throw new SftpFailure(STATUS_CODE.FAILURE, 'is a directory');
      await files.remove(id, file);
      ok(reqId);
    }),
  );

  sftp.on('RENAME', (reqId, from, to) =>
    run(reqId, async () => {
      await files.move(id, resolvePath(from), resolvePath(to));
      ok(reqId);
    }),
  );

  sftp.on('SETSTAT', (reqId) => run(reqId, async () => ok(reqId)));
  for (const unsupported of ['READLINK', 'SYMLINK', 'EXTENDED'] as const) {
    sftp.on(unsupported, (reqId: number) =>
      run(reqId, async () => {
        throw new SftpFailure(STATUS_CODE.OP_UNSUPPORTED, 'not supported');
      }),
    );
  }

  const release = () => {
    for (const handle of handles.values()) {
      if (handle.kind === 'write') handle.writer.abort();
      if (handle.kind === 'read') void handle.reader.close();
    }
    handles.clear();
  };
  sftp.on('close', release);
  // The client's EOF ends the session: exit status 0 (scp fails without one), then close.
  sftp.on('end', () => {
    const channel = sftp as unknown as SftpChannelInternals;
    if (channel.outgoing?.state === 'open') channel._protocol?.exitStatus(channel.outgoing.id, 0);
    sftp.end();
  });
  conn.onClose(release);
}
