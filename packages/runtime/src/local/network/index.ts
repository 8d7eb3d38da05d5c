export type { NetworkManager, NetworkManagerOptions, SandboxNetwork } from './manager.js';
export { createNetworkManager } from './manager.js';
