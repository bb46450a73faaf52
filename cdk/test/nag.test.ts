import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FerryStack } from '../lib/ferry-stack';
import { acknowledgements } from '../lib/nag';
import { build, FLAGS } from './util';

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
  const { stack } = build();
  const acks = acknowledgements(stack);
  for (const a of acks) assert.ok(a.reason.length > 60, `${a.id}: the reason is too thin`);
  // The same stack without acknowledgements: each acknowledged finding must really be there.
  const bare = new App({ context: { ...FLAGS, image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/ferry:test' } });
  new FerryStack(bare, 'Ferry');
  const raw = new AwsSolutionsChecks().validateScope(bare).violations.map((v) => v.ruleName);
  for (const a of acks) assert.ok(raw.includes(a.id), `${a.id} is acknowledged but never found`);
});
