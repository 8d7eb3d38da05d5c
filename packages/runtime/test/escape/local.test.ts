import { afterAll, describe } from 'vitest';
import { makeLocalRuntime, removeTestNetwork } from '../local-fixture.js';
import { describeEscapes } from './index.js';

describe.skipIf(process.getuid?.() !== 0)('local driver escapes', () => {
  afterAll(() => removeTestNetwork());
  describeEscapes('local', makeLocalRuntime);
});
