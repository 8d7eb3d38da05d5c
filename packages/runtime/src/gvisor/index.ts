import type { Runtime } from '../interface.js';
import { GvisorRuntime } from './driver.js';
import type { GvisorRuntimeOptions } from './options.js';

export type { GvisorRuntimeOptions } from './options.js';

/** The gvisor driver (`isolation: "gvisor"`): runsc sandboxes over host overlays. */
export function createGvisorRuntime(options: GvisorRuntimeOptions): Runtime {
  return new GvisorRuntime(options);
}
