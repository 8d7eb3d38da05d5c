import type { Kysely, Migration } from 'kysely';

/**
 * Sandboxes and what hangs off them: encrypted env secrets, snapshots, custom templates.
 * Portable types only (text, integer, bigint) so it runs on SQLite and PostgreSQL alike.
 * JSON columns are text; byte sizes are bigint (read back as number or string: use Number()).
 */
export const m0002_sandboxes: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('sandboxes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('template', 'text', (c) => c.notNull())
      .addColumn('type', 'text')
      .addColumn('isolation', 'text', (c) => c.notNull())
      .addColumn('resources', 'text', (c) => c.notNull())
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('ports', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('gui', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('budget_usd', 'text')
      .addColumn('timeout_seconds', 'integer', (c) => c.notNull())
      .addColumn('idle_timeout_seconds', 'integer')
      .addColumn('trust_score', 'integer')
      .addColumn('error', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text')
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('last_activity_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .execute();
    await db.schema
      .createIndex('sandboxes_workspace_idx')
      .on('sandboxes')
      .columns(['workspace_id', 'created_at'])
      .execute();
    await db.schema.createIndex('sandboxes_status_idx').on('sandboxes').column('status').execute();

    await db.schema
      .createTable('sandbox_env')
      .addColumn('sandbox_id', 'text', (c) => c.notNull().references('sandboxes.id').onDelete('cascade'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('sandbox_env_pk', ['sandbox_id', 'name'])
      .execute();

    await db.schema
      .createTable('snapshots')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('sandbox_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('blob_key', 'text')
      .addColumn('size_bytes', 'bigint')
      .addColumn('sha256', 'text')
      .addColumn('includes_memory', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('template', 'text', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .execute();
    await db.schema
      .createIndex('snapshots_sandbox_idx')
      .on('snapshots')
      .columns(['sandbox_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('snapshots_workspace_idx')
      .on('snapshots')
      .columns(['workspace_id', 'created_at'])
      .execute();

    await db.schema
      .createTable('templates')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('definition', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('runtime_id', 'text')
      .addColumn('size_bytes', 'bigint')
      .addColumn('log', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('error', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .addColumn('deleted_at', 'text')
      .execute();
    await db.schema
      .createIndex('templates_workspace_idx')
      .on('templates')
      .columns(['workspace_id', 'created_at'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('templates').execute();
    await db.schema.dropTable('snapshots').execute();
    await db.schema.dropTable('sandbox_env').execute();
    await db.schema.dropTable('sandboxes').execute();
  },
};
