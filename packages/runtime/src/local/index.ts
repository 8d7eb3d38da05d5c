export { createLocalRuntime, type LocalRuntimeOptions } from './driver.js';
