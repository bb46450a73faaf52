// Rules the AWS emulator cannot judge (it enforces no KMS key policy, no ECR
// pull and no tag propagation), each stated once and checked on every resource
// of the synthesized template it applies to, so a fault in a real account
// fails here first.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { build, definitions, allStates } from './util';

type Resources = Record<string, { Type: string; Properties?: any }>;

/** The logical id a `Ref` or `Fn::GetAtt [id, Arn]` points at. */
function target(ref: unknown): string | undefined {
  const r = ref as Record<string, any>;
  if (r && typeof r === 'object') {
    if (typeof r.Ref === 'string') return r.Ref;
    if (Array.isArray(r['Fn::GetAtt'])) return r['Fn::GetAtt'][0];
  }
  return undefined;
}

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every (queue or topic logical id, service principal) where a service writes. */
function serviceWriters(resources: Resources): Array<{ resource: string; service: string; via: string }> {
  const out: Array<{ resource: string; service: string; via: string }> = [];
  for (const [id, r] of Object.entries(resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::Events::Rule') {
      for (const t of asList<any>(p.Targets)) {
        const dlq = target(t.DeadLetterConfig?.Arn);
        if (dlq) out.push({ resource: dlq, service: 'events.amazonaws.com', via: `${id} dead-letter queue` });
        const arn = target(t.Arn);
        if (arn && resources[arn]?.Type === 'AWS::SNS::Topic') {
          out.push({ resource: arn, service: 'events.amazonaws.com', via: `${id} target` });
        }
      }
    }
    if (r.Type === 'AWS::CloudWatch::Alarm') {
      for (const a of [...asList(p.AlarmActions), ...asList(p.OKActions), ...asList(p.InsufficientDataActions)]) {
        const topic = target(a);
        if (topic) out.push({ resource: topic, service: 'cloudwatch.amazonaws.com', via: `${id} action` });
      }
    }
    const policyTargets =
      r.Type === 'AWS::SQS::QueuePolicy' ? asList(p.Queues) : r.Type === 'AWS::SNS::TopicPolicy' ? asList(p.Topics) : [];
    for (const s of asList<any>(p.PolicyDocument?.Statement)) {
      if (s.Effect !== 'Allow') continue;
      for (const service of asList<string>(s.Principal?.Service)) {
        for (const t of policyTargets) {
          const resource = target(t);
          if (resource) out.push({ resource, service, via: `${id}` });
        }
      }
    }
  }
  return out;
}

/** Whether a key policy lets `service` encrypt for and read the queue or topic. */
function keyGrants(key: any, service: string): boolean {
  const needed = ['kms:GenerateDataKey', 'kms:Decrypt'];
  const allowed = (action: string, granted: string[]) =>
    granted.some((g) => g === '*' || g === 'kms:*' || g === action || (g.endsWith('*') && action.startsWith(g.slice(0, -1))));
  return needed.every((action) =>
    asList<any>(key.Properties?.KeyPolicy?.Statement).some(
      (s) => s.Effect === 'Allow' && asList<string>(s.Principal?.Service).includes(service) && allowed(action, asList(s.Action)),
    ),
  );
}

test('every KMS key of a queue or topic that a service principal writes to grants that principal', () => {
  const { template } = build();
  const resources = template.toJSON().Resources as Resources;
  const writers = serviceWriters(resources);
  // The rule must have something to judge: at least the trigger's dead-letter queue.
  assert.ok(
    writers.some((w) => w.via.includes('dead-letter')),
    `no service writer found in the template: ${JSON.stringify(writers)}`,
  );
  const faults: string[] = [];
  for (const w of writers) {
    const r = resources[w.resource];
    const keyId = target(r?.Properties?.KmsMasterKeyId);
    if (!keyId) continue; // not KMS-encrypted with a key of this stack (SSE-SQS, AWS managed)
    if (!keyGrants(resources[keyId], w.service)) {
      faults.push(`${w.resource} (${w.via}) is encrypted with ${keyId}, whose key policy does not grant ${w.service} kms:GenerateDataKey and kms:Decrypt`);
    }
  }
  assert.deepEqual(faults, []);
});

/** The IAM actions granted to a role (by logical id) across the template's policies. */
function roleActions(resources: Resources, role: string): Array<{ action: string; resource: unknown }> {
  const out: Array<{ action: string; resource: unknown }> = [];
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    if (!asList<any>(r.Properties.Roles).some((x) => target(x) === role)) continue;
    for (const s of asList<any>(r.Properties.PolicyDocument.Statement)) {
      if (s.Effect !== 'Allow') continue;
      for (const a of asList<string>(s.Action)) for (const res of asList<unknown>(s.Resource)) out.push({ action: a, resource: res });
    }
  }
  return out;
}

const ECR_IMAGE = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/ferry:1.2.3';

test('every task whose image is in an ECR registry may pull it (execution role: token, layers, image)', () => {
  const { template } = build({ image: ECR_IMAGE });
  const resources = template.toJSON().Resources as Resources;
  const taskDefs = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::ECS::TaskDefinition');
  assert.ok(taskDefs.length > 0);
  const faults: string[] = [];
  for (const [id, def] of taskDefs) {
    const images = asList<any>(def.Properties.ContainerDefinitions).map((c) => JSON.stringify(c.Image));
    if (!images.some((i) => i.includes('.dkr.ecr.') || i.includes('dkr.ecr'))) {
      faults.push(`${id}: image ${images} is not the ECR image ${ECR_IMAGE}`);
      continue;
    }
    const role = target(def.Properties.ExecutionRoleArn);
    if (!role) {
      faults.push(`${id}: no execution role`);
      continue;
    }
    const granted = roleActions(resources, role);
    for (const action of ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']) {
      if (!granted.some((g) => g.action === action)) faults.push(`${id}: execution role ${role} lacks ${action}`);
    }
    const token = granted.find((g) => g.action === 'ecr:GetAuthorizationToken');
    if (token && token.resource !== '*') faults.push(`${id}: ecr:GetAuthorizationToken must be on "*" (it has no resource)`);
  }
  assert.deepEqual(faults, []);
});

test('every state machine that starts ECS tasks with propagated tags may tag them', () => {
  const { template } = build();
  const resources = template.toJSON().Resources as Resources;
  const defs = definitions(template);
  let checked = 0;
  const faults: string[] = [];
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::StepFunctions::StateMachine') continue;
    const name = id.replace(/StateMachine.*$/, '');
    const propagates = Object.values(allStates(defs[name])).some(
      (s: any) => typeof s.Resource === 'string' && s.Resource.includes(':ecs:runTask') && s.Parameters?.PropagateTags,
    );
    if (!propagates) continue;
    checked += 1;
    const role = target(r.Properties!.RoleArn);
    if (!role || !roleActions(resources, role).some((g) => g.action === 'ecs:TagResource')) {
      faults.push(`${id} runs ECS tasks with PropagateTags but its role ${role} lacks ecs:TagResource`);
    }
  }
  assert.ok(checked >= 3, `only ${checked} state machines run ECS tasks`);
  assert.deepEqual(faults, []);
});
