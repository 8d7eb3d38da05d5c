export { BASE_PACKAGES, BUILTIN_DEFINITIONS, BUILTIN_NAMES, DEFAULT_SUITE } from './builtins.js';
export { TEMPLATE_ID_PATTERN } from './definition.js';
export type * from './interface.js';
export { createTemplateStore, type TemplateRecord, type TemplateStoreOptions } from './store.js';
