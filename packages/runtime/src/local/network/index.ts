export { createNetworkManager } from './manager.js';
export type { NetworkManager, NetworkManagerOptions, SandboxNetwork } from './types.js';
