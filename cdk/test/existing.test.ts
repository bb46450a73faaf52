import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { checkExistingInfra } from '../lib/existing';
import { build } from './util';

const EXAMPLE = path.join(__dirname, '..', 'examples', 'existing-infra.json');
const example = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));

/** The container definition of one step's task definition. */
function container(template: ReturnType<typeof build>['template'], step: string): Record<string, any> {
  const defs = template.findResources('AWS::ECS::TaskDefinition');
  const found = Object.values(defs)
    .map((d: any) => d.Properties.ContainerDefinitions[0])
    .find((c: any) => c.Command[0] === 'task' && c.Command[1] === step);
  assert.ok(found, `no task definition runs ${step}`);
  return found;
}

test('the example existing-infra.json: no VPC, no database, no buckets, no topic of its own', () => {
  const { template, app } = build({ config: EXAMPLE });
  for (const kind of ['AWS::EC2::VPC', 'AWS::EC2::Subnet', 'AWS::EC2::NatGateway', 'AWS::RDS::DBInstance', 'AWS::RDS::DBCluster',
    'AWS::SecretsManager::Secret', 'AWS::S3::Bucket']) {
    assert.deepEqual(Object.keys(template.findResources(kind)), [], `${kind} created`);
  }
  // The only topic is the ops topic (alarms); job events go to the account's bus.
  assert.deepEqual(Object.keys(template.findResources('AWS::SNS::Topic')).map((k) => k.replace(/[0-9A-F]{8}$/, '')), ['OpsAlarms']);
  // Tasks, EFS and the sweep run in the given subnets.
  template.hasResourceProperties('AWS::EFS::MountTarget', { SubnetId: example.vpc.privateSubnetIds[0] });
  template.hasResourceProperties('AWS::EFS::MountTarget', { SubnetId: example.vpc.privateSubnetIds[1] });
  template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: example.vpc.vpcId });
  // The database: reached at its endpoint with TLS, its user and password from its secret, and
  // one ingress rule added to its security group, from the tasks only.
  const transform = container(template, 'transform');
  const plain = Object.fromEntries(transform.Environment.map((e: any) => [e.Name, e.Value]));
  assert.equal(plain.PGHOST, example.database.endpoint);
  assert.equal(plain.PGPORT, '5432');
  assert.equal(plain.PGDATABASE, example.database.databaseName);
  assert.equal(plain.PGSSLMODE, 'verify-full');
  assert.deepEqual(
    transform.Secrets.map((s: any) => [s.Name, s.ValueFrom]).sort(),
    [['PGPASSWORD', `${example.database.secretArn}:password::`], ['PGUSER', `${example.database.secretArn}:username::`]],
  );
  template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
    GroupId: example.database.securityGroupId,
    FromPort: 5432,
    ToPort: 5432,
    SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TasksSecurityGroup'), 'GroupId'] },
  });
  // The input bucket gets EventBridge notifications (and nothing else); the rule matches it.
  template.hasResourceProperties('Custom::S3BucketNotifications', {
    BucketName: example.inputBucket,
    NotificationConfiguration: { EventBridgeConfiguration: {} },
    Managed: false,
  });
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: Match.objectLike({ detail: Match.objectLike({ bucket: { name: [example.inputBucket] } }) }),
  });
  // Job events: the account's bus, which create-job and notify may put events on.
  assert.equal(Object.fromEntries(container(template, 'notify').Environment.map((e: any) => [e.Name, e.Value])).FERRY_NOTIFY,
    `eventbridge://${example.notify.eventBusName}`);
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).map((p: any) => JSON.stringify(p.Properties));
  const putters = policies.filter((p) => p.includes('events:PutEvents') && p.includes(`event-bus/${example.notify.eventBusName}`));
  assert.equal(putters.length, 3, 'create-job, notify and the fast-path function may put job events');
  // Specs are read from the given prefix, by create-job.
  assert.equal(Object.fromEntries(container(template, 'create-job').Environment.map((e: any) => [e.Name, e.Value])).FERRY_SPECS,
    example.specsUri);
  // Artifacts go to the given output bucket, under ferry/.
  assert.ok(policies.some((p) => p.includes(`:s3:::${example.outputBucket}/ferry/*`)));
  // And the whole of it passes cdk-nag with the same acknowledgements.
  const open = new AwsSolutionsChecks().validateScope(app).violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
  assert.deepEqual(open, []);
});

test('without a config the stack creates its own network, database, buckets and topic', () => {
  const { template } = build();
  for (const kind of ['AWS::EC2::VPC', 'AWS::RDS::DBInstance', 'AWS::SecretsManager::Secret']) {
    assert.equal(Object.keys(template.findResources(kind)).length, 1, kind);
  }
  assert.equal(Object.keys(template.findResources('AWS::S3::Bucket')).length, 4);
  assert.match(JSON.stringify(Object.fromEntries(container(template, 'notify').Environment.map((e: any) => [e.Name, e.Value])).FERRY_NOTIFY),
    /"sns:\/\/",\{"Ref":"JobEvents/);
});

test('parts are optional: an existing SNS topic (with its key), everything else created', () => {
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'ferry-config-'));
  const file = path.join(dir, 'topic.json');
  const topic = 'arn:aws:sns:eu-west-1:111122223333:data-events';
  const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  fs.writeFileSync(file, JSON.stringify({ notify: { snsTopicArn: topic, kmsKeyArn: key } }));
  const { template } = build({ config: file });
  assert.equal(Object.keys(template.findResources('AWS::EC2::VPC')).length, 1);
  assert.equal(Object.fromEntries(container(template, 'notify').Environment.map((e: any) => [e.Name, e.Value])).FERRY_NOTIFY,
    `sns://${topic}`);
  const notifyPolicy = Object.values(template.findResources('AWS::IAM::Policy')).map((p: any) => JSON.stringify(p.Properties))
    .filter((p) => p.includes('sns:Publish'));
  assert.ok(notifyPolicy.length === 3 && notifyPolicy.every((p) => p.includes(topic) && p.includes(key) && p.includes('kms:GenerateDataKey')),
    'create-job, notify and the fast-path function may publish to the topic and use its key');
});

test("SSE-KMS buckets of the account's: each role that reads one may decrypt with its key, each that writes may encrypt", () => {
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'ferry-config-'));
  const file = path.join(dir, 'keys.json');
  const key = (n: string) => `arn:aws:kms:eu-west-1:111122223333:key/${n}-0000-0000-0000-000000000000`;
  fs.writeFileSync(file, JSON.stringify({
    inputBucket: 'acme-in', outputBucket: 'acme-out', specsUri: 's3://acme-cfg/specs',
    bucketKeys: { input: key('in'), output: key('out'), specs: key('specs') },
  }));
  const { template, app } = build({ config: file });
  const kmsOf = (prefix: string) => Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.startsWith(prefix))
    .flatMap(([, p]: [string, any]) => p.Properties.PolicyDocument.Statement)
    .filter((st: any) => [].concat(st.Action).some((a: string) => a.startsWith('kms:')))
    // The account's keys (the stack's own events key is granted for the job-events topic).
    .filter((st: any) => JSON.stringify(st.Resource).includes(':111122223333:key/'))
    .map((st: any) => [[].concat(st.Action).sort().join(','), [].concat(st.Resource).sort().join(',')]);
  assert.deepEqual(kmsOf('TaskcreatejobTaskRole'), [['kms:Decrypt,kms:DescribeKey', [key('in'), key('specs')].sort().join(',')]]);
  assert.deepEqual(kmsOf('Tasks3efsdownloaderTaskRole'), [['kms:Decrypt,kms:DescribeKey', key('in')]]);
  assert.ok(kmsOf('Taskefss3uploaderTaskRole').some(([a, r]) => a.includes('kms:GenerateDataKey') && r === key('out')));
  assert.ok(kmsOf('BackfillStateMachineRole').some(([a, r]) => a.includes('kms:GenerateDataKey') && r === key('out')),
    'the backfill writes its map results into the output bucket');
  assert.deepEqual(kmsOf('TasktransformTaskRole'), [], 'a step that touches no bucket gets no key');
  const open = new AwsSolutionsChecks().validateScope(app).violations.map((v) => v.ruleName);
  assert.deepEqual(open, []);
  assert.throws(() => checkExistingInfra({ bucketKeys: { input: key('in') } }), /bucketKeys.input: a key for the input bucket needs that bucket/);
});

test('-c notify=eventbridge sends job events to the account default bus', () => {
  const { template } = build({ notify: 'eventbridge' });
  assert.equal(Object.fromEntries(container(template, 'notify').Environment.map((e: any) => [e.Name, e.Value])).FERRY_NOTIFY,
    'eventbridge://default');
  assert.throws(() => build({ notify: 'carrier-pigeon' }), /context notify=carrier-pigeon/);
});

test('a config that is wrong fails synth naming the field', () => {
  assert.throws(() => checkExistingInfra({ vpcs: {} }), /vpcs: unknown field/);
  assert.throws(() => checkExistingInfra({ vpc: { ...example.vpc, privateSubnetIds: ['subnet-1'] } }), /vpc.privateSubnetIds/);
  assert.throws(() => checkExistingInfra({ database: example.database }), /database: an existing database needs the existing vpc/);
  assert.throws(() => checkExistingInfra({ ...example, database: { ...example.database, secretArn: 'my-secret' } }), /database.*secretArn|secretArn/);
  assert.throws(() => checkExistingInfra({ notify: { snsTopicArn: 'arn:aws:sns:eu-west-1:111122223333:t', eventBusName: 'b' } }), /not both/);
  assert.throws(() => build({ config: '/nonexistent/infra.json' }), /context config=\/nonexistent\/infra.json/);
});
