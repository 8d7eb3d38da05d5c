export * from './errors.js';
export type * from './interface.js';
