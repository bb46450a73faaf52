import * as fs from 'fs';
import * as path from 'path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FerryStack } from '../lib/ferry-stack';
import { acknowledgeFindings } from '../lib/nag';

/** The feature flags cdk.json sets, so the tests build what `cdk synth` builds. */
export const FLAGS = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context as Record<string, unknown>;

/** The stack as `cdk synth` builds it (a fixed image: no Docker asset staging in unit tests). */
export function build(context: Record<string, unknown> = {}): { app: App; stack: FerryStack; template: Template } {
  const app = new App({ context: { ...FLAGS, image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/ferry:test', ...context } });
  const stack = new FerryStack(app, 'Ferry');
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  acknowledgeFindings(stack);
  return { app, stack, template: Template.fromStack(stack) };
}

/** Turns CloudFormation tokens inside a definition into readable placeholders. */
export function resolveTokens(value: unknown, refs: Record<string, string> = {}): string {
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': 'us-east-1',
    'AWS::AccountId': '123456789012',
    'AWS::URLSuffix': 'amazonaws.com',
  };
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if ('Fn::Join' in v) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => resolveTokens(p, refs)).join(sep);
  }
  if ('Ref' in v) {
    const name = v.Ref as string;
    return pseudo[name] ?? refs[name] ?? `REF_${name}`;
  }
  if ('Fn::GetAtt' in v) {
    const [name, attr] = v['Fn::GetAtt'] as [string, string];
    return refs[`${name}.${attr}`] ?? `GETATT_${name}_${attr}`;
  }
  throw new Error(`unexpected token in a definition: ${JSON.stringify(value)}`);
}

/** The state machines' ASL, by logical id prefix (Orchestrator, Loader, Converter, Backfill). */
export function definitions(template: Template): Record<string, Record<string, any>> {
  const out: Record<string, Record<string, any>> = {};
  for (const [id, res] of Object.entries(template.findResources('AWS::StepFunctions::StateMachine'))) {
    const name = id.replace(/StateMachine.*$/, '');
    out[name] = JSON.parse(resolveTokens((res as any).Properties.DefinitionString));
  }
  return out;
}

/** Every state of a definition, including those inside Map item processors and Parallel branches. */
export function allStates(def: Record<string, any>): Record<string, any> {
  const states: Record<string, any> = {};
  const walk = (d: Record<string, any>) => {
    for (const [name, s] of Object.entries(d.States as Record<string, any>)) {
      states[name] = s;
      if (s.ItemProcessor) walk(s.ItemProcessor);
      if (s.Iterator) walk(s.Iterator);
      for (const b of s.Branches ?? []) walk(b);
    }
  };
  walk(def);
  return states;
}
