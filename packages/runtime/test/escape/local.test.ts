import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { createNetworkManager } from '../../src/local/network/index.js';
import { createRuntime } from '../../src/runtime.js';
import { createTemplateStore } from '../../src/templates/index.js';
import { makeLocalRuntime, removeTestNetwork, TEMPLATE_DIR } from '../local-fixture.js';
import { describeEscapes } from './index.js';

// The network section's own names (its DNS upstream is the test's resolver, never the host's).
const tag = (process.pid % 0xfff).toString(16).padStart(3, '0');
const ESCAPE_NET = {
  bridge: `cre${tag}`,
  tableName: `corral_esc_${tag}`,
  netnsPrefix: `cre${tag}-`,
  vethPrefix: `e${tag}`,
  subnet: '100.105.0.0/16',
};

describe('local driver escapes', () => {
  afterAll(() => removeTestNetwork());
  describeEscapes('local', makeLocalRuntime, {
    name: 'local',
    names: ESCAPE_NET,
    makeRuntime: (stateDir, network) =>
      createRuntime({
        isolation: 'local',
        stateDir,
        templates: createTemplateStore({ dir: TEMPLATE_DIR }),
        network: createNetworkManager({ stateDir: join(stateDir, 'network'), ...network }),
      }),
  });
});
