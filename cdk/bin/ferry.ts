#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FerryStack } from '../lib/ferry-stack';
import { acknowledgeFindings } from '../lib/nag';

const app = new App();
// Env-agnostic: no account or region lookups, so `cdk synth` runs offline.
const stack = new FerryStack(app, 'Ferry', {
  description: 'ferry: event-driven Loader and Converter (S3 → EventBridge → Step Functions → ECS Fargate → RDS PostgreSQL)',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
acknowledgeFindings(stack);
