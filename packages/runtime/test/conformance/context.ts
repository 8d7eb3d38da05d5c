import { randomBytes } from 'node:crypto';
import type { Runtime, SandboxSpec } from '../../src/interface.js';

/** Makes a runtime over `stateDir`; called again with the same dir to simulate a control-plane restart. */
export type MakeRuntime = (stateDir: string) => Runtime | Promise<Runtime>;

/** What every conformance section gets from the suite. */
export interface ConformanceContext {
  runtime(): Runtime;
  stateDir(): string;
  /** A second runtime instance over the same stateDir (the first is closed, sandboxes keep running). */
  restart(): Promise<Runtime>;
  /** A spec for the base template with a unique id; the sandbox is destroyed after the suite. */
  spec(name: string, overrides?: Partial<SandboxSpec>): SandboxSpec;
  /** A running sandbox shared by read-mostly sections (files, ports, exec). */
  sharedSandbox(): string;
}

const run = randomBytes(3).toString('hex');

/** A unique sandbox id for this test run. */
export function sandboxId(name: string): string {
  return `cf-${run}-${name}`.slice(0, 64);
}

export function baseSpec(name: string, overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    id: sandboxId(name),
    template: 'base',
    resources: { cpu: 1, memoryMb: 512, diskMb: 1024, pids: 512 },
    env: { CONFORMANCE: 'yes' },
    network: { mode: 'none' },
    metadata: { suite: 'conformance' },
    ...overrides,
  };
}
