export { type AuditEvent, AuditLog, type AuditRecord } from './audit.js';
export { type Dialect, isoNow, openStore, type Store, type StoreOptions } from './db.js';
export { MigrationError, migrateToLatest } from './migrate.js';
export * from './pagination.js';
export type * from './schema.js';
