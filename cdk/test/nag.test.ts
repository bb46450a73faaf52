import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AwsSolutionsChecks } from 'cdk-nag';
import { acknowledgements } from '../lib/nag';
import { build } from './util';

test('cdk-nag AwsSolutions: no finding without an acknowledgement', () => {
  const { app } = build();
  const report = new AwsSolutionsChecks().validateScope(app);
  const open = report.violations.map(
    (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
  );
  assert.deepEqual(open, []);
});

test('cdk-nag: the default image asset path is checked too', () => {
  // Without the image context the stack builds containers/Dockerfile as an asset.
  const { app } = build({ image: undefined });
  assert.deepEqual(new AwsSolutionsChecks().validateScope(app).violations, []);
});

test('every acknowledgement is used and explains itself', () => {
  const { app, stack } = build();
  const acks = acknowledgements(stack);
  for (const a of acks) assert.ok(a.reason.length > 60, `${a.id}: the reason is too thin`);
  // Drop each acknowledgement in turn: the finding it covers must come back.
  const { app: bare } = (() => {
    const { App } = require('aws-cdk-lib');
    const { FerryStack } = require('../lib/ferry-stack');
    const a = new App({ context: { image: 'example.com/ferry:test' } });
    new FerryStack(a, 'Ferry');
    return { app: a };
  })();
  const raw = new AwsSolutionsChecks().validateScope(bare).violations.map((v) => v.ruleName);
  for (const a of acks) assert.ok(raw.includes(a.id), `${a.id} is acknowledged but never found`);
  void app;
});
