import type { Kysely, Migration } from 'kysely';

/**
 * Interactive access: capability tokens (tunnel, observe, port-forward — hashed, expiring,
 * revocable), per-port preview settings (public, password), and users' SSH public keys.
 */
export const m0003_interactive: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('sandbox_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('sandbox_id', 'text', (c) => c.notNull().references('sandboxes.id'))
      .addColumn('workspace_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('port', 'integer')
      .addColumn('session_id', 'text')
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .addColumn('last_used_at', 'text')
      .execute();
    await db.schema
      .createIndex('sandbox_tokens_sandbox_idx')
      .on('sandbox_tokens')
      .columns(['sandbox_id', 'created_at'])
      .execute();

    await db.schema
      .createTable('sandbox_ports')
      .addColumn('sandbox_id', 'text', (c) => c.notNull().references('sandboxes.id'))
      .addColumn('port', 'integer', (c) => c.notNull())
      .addColumn('public', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('password_hash', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('sandbox_ports_pk', ['sandbox_id', 'port'])
      .execute();

    await db.schema
      .createTable('ssh_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('algorithm', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_used_at', 'text')
      .addUniqueConstraint('ssh_keys_user_fingerprint', ['user_id', 'fingerprint'])
      .execute();
    await db.schema.createIndex('ssh_keys_fingerprint_idx').on('ssh_keys').column('fingerprint').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('ssh_keys').execute();
    await db.schema.dropTable('sandbox_ports').execute();
    await db.schema.dropTable('sandbox_tokens').execute();
  },
};
