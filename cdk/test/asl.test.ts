import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { build, definitions } from './util';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (d: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

test('every synthesized state machine definition passes asl-validator', () => {
  const defs = definitions(build().template);
  assert.equal(Object.keys(defs).length, 5);
  for (const [name, def] of Object.entries(defs)) {
    const { isValid, errorsText } = aslValidator(def);
    assert.ok(isValid, `${name}: ${errorsText('\n')}`);
  }
});
