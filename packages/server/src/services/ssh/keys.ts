import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import ssh2 from 'ssh2';
import { apiError } from '../../errors.js';
import { newId } from '../../ids.js';
import { isoNow } from '../../store/db.js';
import type { Database } from '../../store/schema.js';
import { roleAtLeast } from '../access.js';

/** A public key larger than this is refused (16 KiB; an RSA-16384 key is ~2.8 KiB). */
export const MAX_PUBLIC_KEY_BYTES = 16 * 1024;
/** Keys one user may register. */
export const MAX_SSH_KEYS_PER_USER = 100;
/** Key types the gateway accepts (OpenSSH 9 no longer accepts ssh-dss either). */
export const SSH_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
] as const;

/** The OpenSSH one-line form: `type base64 [comment]`. */
const ONE_LINE = /^([a-z0-9@.-]+) ([A-Za-z0-9+/]+={0,3})(?: [^\r\n]*)?$/;

/** A parsed public key, ready to store. */
export interface ParsedPublicKey {
  algorithm: string;
  /** `{algorithm} {base64}` (no comment). */
  publicKey: string;
  /** The key blob (what SSH clients send). */
  blob: Buffer;
  fingerprint: string;
}

/** `SHA256:{base64, unpadded}` of a key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Parses an OpenSSH one-line public key (`ssh-ed25519 AAAA… comment`). Throws 400
 * VALIDATION_ERROR `{field: 'public_key', reason}` for private keys, other formats, unknown
 * types, garbage, and anything over MAX_PUBLIC_KEY_BYTES.
 */
export function parsePublicKey(text: string): ParsedPublicKey {
  const refuse = (reason: string) => apiError('VALIDATION_ERROR', { field: 'public_key', reason });
  if (Buffer.byteLength(text) > MAX_PUBLIC_KEY_BYTES)
    throw refuse(`larger than ${MAX_PUBLIC_KEY_BYTES} bytes`);
  const line = text.trim();
  if (/PRIVATE KEY/.test(line)) throw refuse('this is a private key: give the public key (the .pub file)');
  const match = ONE_LINE.exec(line);
  if (!match) throw refuse('not an OpenSSH public key (expected one line: "ssh-ed25519 AAAA… comment")');
  const type = match[1]!;
  if (!(SSH_KEY_ALGORITHMS as readonly string[]).includes(type))
    throw refuse(`unsupported key type ${type} (use one of ${SSH_KEY_ALGORITHMS.join(', ')})`);
  const parsed = ssh2.utils.parseKey(`${type} ${match[2]!}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw refuse('the key does not parse');
  if (key.isPrivateKey()) throw refuse('this is a private key: give the public key (the .pub file)');
  if (key.type !== type) throw refuse('the key type does not match its data');
  const blob = key.getPublicSSH();
  return {
    algorithm: type,
    publicKey: `${type} ${blob.toString('base64')}`,
    blob,
    fingerprint: fingerprintOf(blob),
  };
}

/** A registered key as the API shows it. */
export interface SshKeyView {
  id: string;
  name: string;
  algorithm: string;
  fingerprint: string;
  public_key: string;
  created_at: string;
  last_used_at: string | null;
}

const VIEW_COLUMNS = [
  'id',
  'name',
  'algorithm',
  'fingerprint',
  'public_key',
  'created_at',
  'last_used_at',
] as const;

/** A user's keys, oldest first. */
export function listSshKeys(db: Kysely<Database>, userId: string): Promise<SshKeyView[]> {
  return db
    .selectFrom('ssh_keys')
    .select(VIEW_COLUMNS)
    .where('user_id', '=', userId)
    .orderBy('created_at', 'asc')
    .orderBy('id', 'asc')
    .execute();
}

/** Registers a key for `userId`; 409 CONFLICT when the user has it already (or too many). */
export async function addSshKey(
  db: Kysely<Database>,
  userId: string,
  name: string,
  key: ParsedPublicKey,
): Promise<SshKeyView> {
  const existing = await db
    .selectFrom('ssh_keys')
    .select(['id', 'fingerprint'])
    .where('user_id', '=', userId)
    .execute();
  const same = existing.find((row) => row.fingerprint === key.fingerprint);
  if (same)
    throw apiError(
      'CONFLICT',
      { id: same.id, fingerprint: key.fingerprint },
      'You registered this key already',
    );
  if (existing.length >= MAX_SSH_KEYS_PER_USER)
    throw apiError(
      'CONFLICT',
      { limit: MAX_SSH_KEYS_PER_USER },
      'You have registered the most SSH keys allowed',
    );
  const row = {
    id: newId('sshk'),
    user_id: userId,
    name,
    algorithm: key.algorithm,
    public_key: key.publicKey,
    fingerprint: key.fingerprint,
    created_at: isoNow(),
    last_used_at: null,
  };
  try {
    await db.insertInto('ssh_keys').values(row).execute();
  } catch (err) {
    // Two requests raced past the check above: the unique (user, fingerprint) index decides.
    const again = await db
      .selectFrom('ssh_keys')
      .select('id')
      .where('user_id', '=', userId)
      .where('fingerprint', '=', key.fingerprint)
      .executeTakeFirst();
    if (again)
      throw apiError(
        'CONFLICT',
        { id: again.id, fingerprint: key.fingerprint },
        'You registered this key already',
      );
    throw err;
  }
  const { user_id: _user, ...view } = row;
  return view;
}

/** Deletes one of `userId`'s keys; false when the user has no such key. */
export async function deleteSshKey(db: Kysely<Database>, userId: string, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom('ssh_keys')
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Every registered key with this fingerprint (one per user who registered it). */
export function keysWithFingerprint(db: Kysely<Database>, fingerprint: string) {
  return db
    .selectFrom('ssh_keys')
    .select(['id', 'user_id', 'public_key'])
    .where('fingerprint', '=', fingerprint)
    .execute();
}

/** Marks a key used (after a login with it). */
export async function markSshKeyUsed(db: Kysely<Database>, id: string): Promise<void> {
  await db.updateTable('ssh_keys').set({ last_used_at: isoNow() }).where('id', '=', id).execute();
}

/** A connection logged in with a registered key: which key, into which sandbox. */
export interface KeyLogin {
  keyId: string;
  sandboxId: string;
}

/**
 * Of `logins`, those still allowed (as `${keyId} ${sandboxId}`): the key is still registered,
 * its user is still developer or more in the sandbox's workspace, and neither the sandbox nor
 * the workspace is deleted. One query per batch, for the periodic re-check of open connections.
 */
export async function liveKeyLogins(db: Kysely<Database>, logins: readonly KeyLogin[]): Promise<Set<string>> {
  const live = new Set<string>();
  const wanted = new Set(logins.map((login) => `${login.keyId} ${login.sandboxId}`));
  const keyIds = [...new Set(logins.map((login) => login.keyId))];
  const sandboxIds = [...new Set(logins.map((login) => login.sandboxId))];
  // Connections are few per server; keys × sandboxes stays small, but batch the keys anyway.
  for (let start = 0; start < keyIds.length; start += 200) {
    const rows = await db
      .selectFrom('ssh_keys as k')
      .innerJoin('members as m', 'm.user_id', 'k.user_id')
      .innerJoin('sandboxes as s', 's.workspace_id', 'm.workspace_id')
      .innerJoin('workspaces as w', 'w.id', 's.workspace_id')
      .select(['k.id as key_id', 's.id as sandbox_id', 'm.role as role'])
      .where('k.id', 'in', keyIds.slice(start, start + 200))
      .where('s.id', 'in', sandboxIds)
      .where('s.deleted_at', 'is', null)
      .where('w.deleted_at', 'is', null)
      .execute();
    for (const row of rows) {
      const login = `${row.key_id} ${row.sandbox_id}`;
      if (wanted.has(login) && roleAtLeast(row.role, 'developer')) live.add(login);
    }
  }
  return live;
}
