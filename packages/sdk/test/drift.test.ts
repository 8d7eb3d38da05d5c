import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { GENERATED_PATH, generateTypes, HEADER } from '../scripts/generate.mjs';

describe('sdk: generated types', () => {
  it("match the server's current OpenAPI document", async () => {
    const committed = await readFile(GENERATED_PATH, 'utf8');
    expect(committed.startsWith(HEADER)).toBe(true);
    const fresh = await generateTypes();
    if (fresh !== committed) {
      throw new Error(
        "packages/sdk/src/generated/openapi.generated.ts is out of date with the server's OpenAPI document: " +
          'run `npm run build && npm run generate -w @corral/sdk` and commit the result.',
      );
    }
  });
});
