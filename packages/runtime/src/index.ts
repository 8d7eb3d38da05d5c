/**
 * @corral/runtime — creates, runs, freezes, snapshots and destroys isolated Linux sandboxes.
 * The server uses only the Runtime interface, the factory and the template store.
 */
export * from './errors.js';
export type * from './interface.js';
export {
  createNetworkManager,
  type NetworkManager,
  type NetworkManagerOptions,
} from './local/network/index.js';
export { createRuntime, type RuntimeOptions } from './runtime.js';
export * from './shared/ids.js';
export * from './templates/index.js';
