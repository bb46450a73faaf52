import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Match } from 'aws-cdk-lib/assertions';
import { loadContract } from '../lib/contract';
import { allStates, build, definitions } from './util';

const { stack, template } = build();
const contract = loadContract();
const resources = (type: string) => Object.entries(template.findResources(type));
const logicalId = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);

test('buckets: encrypted, TLS only, no public access; input versioned and on EventBridge; output expires', () => {
  template.resourceCountIs('AWS::S3::Bucket', 4); // input, output, specs, access logs
  for (const [, b] of resources('AWS::S3::Bucket')) {
    assert.deepEqual(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault, {
      SSEAlgorithm: 'AES256',
    });
    assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  }
  for (const bucket of [stack.inputBucket, stack.outputBucket, stack.specsBucket!]) {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  }
  const input = template.toJSON().Resources[logicalId(stack.inputBucket)].Properties;
  assert.equal(input.VersioningConfiguration.Status, 'Enabled');
  assert.ok(input.LoggingConfiguration, 'input bucket access logs');
  const output = template.toJSON().Resources[logicalId(stack.outputBucket)].Properties;
  const rule = output.LifecycleConfiguration.Rules[0];
  assert.equal(rule.ExpirationInDays, 365);
  assert.equal(rule.Transitions[0].StorageClass, 'STANDARD_IA');
  assert.equal(rule.AbortIncompleteMultipartUpload.DaysAfterInitiation, 7);
  // EventBridge notifications on the input bucket (CDK's custom resource turns them on).
  template.hasResourceProperties('Custom::S3BucketNotifications', {
    BucketName: { Ref: logicalId(stack.inputBucket) },
    NotificationConfiguration: { EventBridgeConfiguration: {} },
  });
});

test('the Object Created rule starts the orchestrator, with retries and a dead-letter queue', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: {
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: { bucket: { name: [{ Ref: logicalId(stack.inputBucket) }] } },
    },
    Targets: [
      Match.objectLike({
        Arn: { Ref: logicalId(stack.stateMachines.orchestrator) },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(stack.deadLetters), 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 86400 },
      }),
    ],
  });
  template.hasResourceProperties('AWS::SQS::Queue', { KmsMasterKeyId: Match.anyValue() });
});

test('jobs table: the layout the job store expects, on demand, with point-in-time recovery', () => {
  template.hasResourceProperties('AWS::DynamoDB::Table', {
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [{ AttributeName: contract.job_store.partition_key, KeyType: 'HASH' }],
    PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    SSESpecification: { SSEEnabled: true },
    DeletionProtectionEnabled: true,
    GlobalSecondaryIndexes: [
      {
        IndexName: contract.job_store.status_index.name,
        KeySchema: [
          { AttributeName: contract.job_store.status_index.partition_key, KeyType: 'HASH' },
          { AttributeName: contract.job_store.status_index.sort_key, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  });
});

test("working storage: an hourly `ferry jobs gc` removes failed jobs' folders after workRetentionDays", () => {
  const sweep = (t: typeof template) => {
    const rules = Object.values(t.findResources('AWS::Events::Rule')).filter((r: any) => r.Properties.ScheduleExpression);
    assert.equal(rules.length, 1);
    const rule: any = rules[0];
    assert.equal(rule.Properties.ScheduleExpression, 'rate(1 hour)');
    const target = rule.Properties.Targets[0];
    const defId = target.EcsParameters.TaskDefinitionArn.Ref;
    return t.toJSON().Resources[defId].Properties.ContainerDefinitions[0].Command;
  };
  assert.deepEqual(sweep(template), ['jobs', 'gc', '--older-than', '7d']);
  assert.deepEqual(sweep(build({ workRetentionDays: 30 }).template), ['jobs', 'gc', '--older-than', '30d']);
  // It reads the job table (a running job's folder is never removed) and writes nothing else.
  const role = stack.gcTask.taskRole;
  const id = stack.getLogicalId(role.node.tryFindChild('DefaultPolicy')!.node.defaultChild as never);
  const actions = template.toJSON().Resources[id].Properties.PolicyDocument.Statement.flatMap((s: any) => [].concat(s.Action));
  assert.ok(actions.includes('dynamodb:GetItem'));
  assert.ok(!actions.some((a: string) => /dynamodb:(PutItem|UpdateItem|DeleteItem)|s3:|sns:/.test(a)), actions.join(' '));
});

test('EFS: encrypted, one access point owned by the image user, mounted at /data by every step', () => {
  template.hasResourceProperties('AWS::EFS::FileSystem', { Encrypted: true });
  template.hasResourceProperties('AWS::EFS::AccessPoint', {
    PosixUser: { Uid: '10001', Gid: '10001' },
    RootDirectory: { Path: '/ferry', CreationInfo: { OwnerUid: '10001', OwnerGid: '10001', Permissions: '750' } },
  });
  const defs = resources('AWS::ECS::TaskDefinition');
  assert.equal(defs.length, Object.keys(contract.steps).length + 1, 'one task definition per step, and the sweep');
  for (const [id, d] of defs) {
    const p = d.Properties;
    const efs = p.Volumes.find((v: any) => v.Name === 'work').EFSVolumeConfiguration;
    assert.equal(efs.TransitEncryption, 'ENABLED', id);
    assert.equal(efs.AuthorizationConfig.IAM, 'ENABLED', id);
    const c = p.ContainerDefinitions[0];
    assert.deepEqual(c.MountPoints.find((m: any) => m.SourceVolume === 'work'), {
      ContainerPath: '/data',
      ReadOnly: false,
      SourceVolume: 'work',
    });
    assert.equal(c.ReadonlyRootFilesystem, true, id);
    assert.equal(c.User, '10001:10001', id);
    const env = Object.fromEntries(c.Environment.map((e: any) => [e.Name, e.Value]));
    assert.equal(env.FERRY_WORK_DIR, '/data', id);
    assert.equal(env.FERRY_LOG_FORMAT, 'json', id);
    assert.ok(['task', 'jobs'].includes(c.Command[0]), id);
    assert.equal(c.LogConfiguration.LogDriver, 'awslogs', id);
  }
});

test('PostgreSQL: isolated, encrypted, TLS forced, credentials only through Secrets Manager', () => {
  template.hasResourceProperties('AWS::RDS::DBInstance', {
    Engine: 'postgres',
    StorageEncrypted: true,
    MultiAZ: true,
    DeletionProtection: true,
    PubliclyAccessible: false,
    EnableIAMDatabaseAuthentication: true,
    BackupRetentionPeriod: 7,
  });
  template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
    Parameters: { 'rds.force_ssl': '1', max_prepared_transactions: '64' },
  });
  template.hasResourceProperties('AWS::RDS::DBSubnetGroup', {
    SubnetIds: Match.arrayWith([{ Ref: Match.stringLikeRegexp('^Vpcdatabase') }]),
  });
  template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
    RotationRules: { ScheduleExpression: 'rate(30 days)' },
  });
  // Only the steps that touch the database get its secret; no password value anywhere in the template.
  const text = JSON.stringify(template.toJSON());
  assert.doesNotMatch(text, /"MasterUserPassword":"[^{]/);
  for (const [id, d] of resources('AWS::ECS::TaskDefinition')) {
    const c = d.Properties.ContainerDefinitions[0];
    const secrets = (c.Secrets ?? []).map((s: any) => s.Name).sort();
    const dbStep = /transform|sqlprocessor/.test(id);
    assert.deepEqual(secrets, dbStep ? ['PGDATABASE', 'PGHOST', 'PGPASSWORD', 'PGPORT', 'PGUSER'] : [], id);
    for (const e of c.Environment) assert.doesNotMatch(e.Name, /PASSWORD|SECRET/, id);
    if (dbStep) {
      const env = Object.fromEntries(c.Environment.map((e: any) => [e.Name, e.Value]));
      assert.equal(env.PGSSLMODE, 'verify-full', id);
    }
  }
});

test('job events: a KMS-encrypted SNS topic that only accepts TLS', () => {
  template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  template.hasResourceProperties('AWS::SNS::TopicPolicy', {
    PolicyDocument: {
      Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
    },
  });
});

test('logs: every log group has a retention; state machines log without execution data and trace', () => {
  for (const [id, g] of resources('AWS::Logs::LogGroup')) assert.equal(g.Properties.RetentionInDays, 30, id);
  for (const [id, m] of resources('AWS::StepFunctions::StateMachine')) {
    assert.equal(m.Properties.LoggingConfiguration.Level, 'ALL', id);
    assert.equal(m.Properties.LoggingConfiguration.IncludeExecutionData, false, id);
    assert.equal(m.Properties.TracingConfiguration.Enabled, true, id);
  }
  template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL' });
  template.hasResourceProperties('AWS::ECS::Cluster', {
    ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
  });
});

/** The actions a step's task role may perform, flattened from its policies. */
function actionsOf(step: string): Set<string> {
  const role = stack.taskDefinitions[step].taskRole;
  const id = stack.getLogicalId(role.node.tryFindChild('DefaultPolicy')!.node.defaultChild as never);
  const doc = template.toJSON().Resources[id].Properties.PolicyDocument;
  return new Set(doc.Statement.flatMap((s: any) => ([] as string[]).concat(s.Action)));
}

test('least privilege: each step role holds only what that step does', () => {
  const all = Object.keys(contract.steps);
  for (const step of all) {
    const a = actionsOf(step);
    for (const x of ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat', 'dynamodb:PutItem']) {
      assert.ok(a.has(x), `${step} lacks ${x}`);
    }
    assert.equal(a.has('s3:GetObject*'), step === 's3-efs-downloader' || step === 'create-job', `${step}: input read`);
    assert.equal(a.has('s3:PutObject'), step === 'efs-s3-uploader', `${step}: output write`);
    assert.equal(a.has('sns:Publish'), step === 'notify' || step === 'create-job', `${step}: publish`);
    for (const x of a) assert.ok(!/^(\*|s3:\*|dynamodb:\*|iam:)/.test(x), `${step}: ${x}`);
  }
});

test('state machines: one ECS task per step with the CLI command, task tokens, retries only where they help', () => {
  const defs = definitions(template);
  assert.deepEqual(Object.keys(defs).sort(), ['Backfill', 'Converter', 'Loader', 'Orchestrator', 'Reaper']);
  for (const wf of ['loader', 'converter'] as const) {
    const def = defs[wf === 'loader' ? 'Loader' : 'Converter'];
    const states = allStates(def);
    const middle = contract.workflows[wf].slice(1, -1);
    // The order of the CLI's workflow.
    let at = def.StartAt;
    const seen: string[] = [];
    let choices = 0;
    while (states[at] && (states[at].Type === 'Parallel' || states[at].Type === 'Choice')) {
      if (states[at].Type === 'Choice') {
        choices += 1;
        // A split input's parts: a Distributed Map of `transform --part K` (`convert --part K`)
        // tasks, then on.
        const splitter = wf === 'loader' ? 'transform' : 'convert';
        assert.equal(at, 'split into parts?');
        const [parts] = states[at].Choices;
        assert.deepEqual(parts.Variable, '$.job.outputs.parts');
        assert.equal(parts.IsPresent, true);
        const map = states[parts.Next];
        assert.equal(map.Type, 'Map');
        assert.equal(map.ItemProcessor.ProcessorConfig.Mode, 'DISTRIBUTED');
        assert.equal(map.ItemsPath, '$.job.outputs.parts');
        assert.equal(map.MaxConcurrency, 8);
        assert.equal(map.ResultPath, null, "the parts' outputs are not kept: sql-processor reads their files");
        assert.deepEqual(map.Catch, [{ ErrorEquals: ['States.ALL'], ResultPath: '$.job.error', Next: 'notify failure' }]);
        assert.equal(map.Next, states[at].Default, 'after the parts, the step a whole input goes to');
        assert.equal(parts.Next, `${splitter} each part`);
        const item = states[`${splitter} part: task`].Parameters.Overrides.ContainerOverrides[0];
        assert.equal(item['Command.$'], `States.Array('task', '${splitter}', '--job-id', $.job.job_id, '--part', States.Format('{}', $.part))`);
        assert.ok(states[`${splitter} part`].Retry.some((r: any) => r.ErrorEquals.includes('ferry.Transient')), 'a part is retried');
        at = states[at].Default;
        continue;
      }
      seen.push(at);
      at = states[at].Next;
    }
    assert.deepEqual(seen, [...middle, 'notify'], wf);
    assert.equal(choices, 1, `${wf}: one split choice`);
    for (const step of [...middle, 'notify', 'notify failure']) {
      const p = states[step];
      const s = states[`${step}: task`];
      assert.equal(p.OutputPath, '$[0]', step);
      assert.equal(p.Branches[0].StartAt, `${step}: task`);
      assert.equal(s.Resource, 'arn:aws:states:::ecs:runTask.waitForTaskToken', step);
      // Only the job id (and for the failure notice, the caught error's name) in the overrides.
      const o = s.Parameters.Overrides.ContainerOverrides[0];
      const name = step === 'notify failure' ? 'notify' : step;
      const caught = step === 'notify failure' ? ", '--caught', $.job.error.Error" : '';
      assert.equal(o['Command.$'], `States.Array('task', '${name}', '--job-id', $.job.job_id${caught})`, step);
      const token = { Name: 'FERRY_TASK_TOKEN', 'Value.$': '$$.Task.Token' };
      // The Loader's transform and the Converter's convert leave a split input's parts to the Map above.
      const defer = step === 'transform' || step === 'convert' ? [{ Name: 'FERRY_DEFER_PARTS', Value: 'true' }] : [];
      assert.deepEqual(o.Environment, [token, ...defer], step);
      // Its task is in the execution's task group, so a timeout can find it among the step's tasks.
      assert.equal(s.Parameters['Group.$'], "States.Format('ferry:{}', $$.Execution.Name)", step);
      assert.equal(s.HeartbeatSeconds, 120, step);
      assert.equal(s.TimeoutSeconds, 12 * 3600, step);
      assert.equal(s.Parameters.LaunchType, 'FARGATE', step);
      // A timeout stops the task it started, then fails with the same error.
      assert.deepEqual(s.Catch, [{ ErrorEquals: ['States.HeartbeatTimeout', 'States.Timeout'], ResultPath: '$.error', Next: `${step}: find its task` }]);
      const find = states[`${step}: find its task`];
      assert.equal(find.Resource, 'arn:aws:states:::aws-sdk:ecs:listTasks');
      assert.equal(find.Parameters.DesiredStatus, 'RUNNING');
      // Page by page (ListTasks returns 100 at most): the task may be on a later page.
      const more = states[`${step}: more tasks?`];
      assert.equal(states[find.Next].Default, `${step}: more tasks?`, 'nothing running: no page to stop in');
      assert.deepEqual(more.Choices[0], { Variable: '$.running.page.NextToken', IsPresent: true, Next: `${step}: next page` });
      assert.equal(more.Default, `${step}: which timeout`, 'the last page: on to the error');
      assert.equal(states[`${step}: next page`].Parameters['NextToken.$'], '$.running.page.NextToken');
      assert.equal(states[`${step}: next page`].Next, find.Next, 'each page is looked at the same way');
      assert.equal(states[`${step}: describe them`].Resource, 'arn:aws:states:::aws-sdk:ecs:describeTasks');
      const stop = states[`${step}: stop it`];
      assert.equal(stop.ItemSelector['mine.$'], "States.Format('ferry:{}', $$.Execution.Name)");
      const ours = states[`${step}: ours?`];
      assert.deepEqual(ours.Choices[0], { Variable: '$.group', StringEqualsPath: '$.mine', Next: `${step}: stop one` });
      assert.equal(states[`${step}: stop one`].Resource, 'arn:aws:states:::aws-sdk:ecs:stopTask');
      assert.equal(stop.Next, `${step}: more tasks?`);
      const which = states[`${step}: which timeout`];
      assert.equal(states[which.Choices[0].Next].Error, 'ferry.TaskLost');
      assert.equal(which.Choices[0].StringEquals, 'States.HeartbeatTimeout');
      assert.equal(states[which.Default].Error, 'ferry.StepTimedOut');
      const retried = p.Retry.flatMap((r: any) => r.ErrorEquals);
      assert.ok(retried.includes('ferry.Transient'), step);
      assert.ok(retried.includes('ferry.TaskLost'), step);
      assert.ok(!retried.includes('ferry.StepTimedOut'), step);
      for (const e of contract.errors.not_retryable) assert.ok(!retried.includes(e), `${step} retries ${e}`);
      assert.ok(!retried.includes('States.ALL'), step);
      if (middle.includes(step)) {
        assert.deepEqual(p.Catch, [{ ErrorEquals: ['States.ALL'], ResultPath: '$.job.error', Next: 'notify failure' }], step);
      }
    }
    // Failure: notified, then the execution fails with ferry's error name.
    assert.equal(states['notify failure'].Next, 'Failed');
    assert.equal(states.Failed.ErrorPath, '$.job.error.Error');
  }
  const o = allStates(defs.Orchestrator);
  // Small objects first go to the fast path (its own test below); the rest start at create-job.
  assert.equal(defs.Orchestrator.StartAt, 'By size');
  assert.equal(o['By size'].Default, 'create-job');
  assert.equal(
    o['create-job: task'].Parameters.Overrides.ContainerOverrides[0]['Command.$'],
    "States.Array('task', 'create-job', '--event', States.JsonToString($))",
  );
  assert.equal(o['Run Loader'].Resource, 'arn:aws:states:::states:startExecution.sync:2');
  assert.equal(o['Run Converter'].Resource, 'arn:aws:states:::states:startExecution.sync:2');
  assert.equal(o.Route.Choices[0].Variable, '$.job.run');
  const b = allStates(defs.Backfill);
  assert.equal(b['Every object'].ItemProcessor.ProcessorConfig.Mode, 'DISTRIBUTED');
  assert.equal(b['Every object'].MaxConcurrency, 8);
  assert.equal(b['Every object'].ItemReader.Resource, 'arn:aws:states:::s3:listObjectsV2');
  assert.equal(b['Run one object'].Parameters.Input['detail-type'], 'Object Created');
  // The map run's results go to S3, not into the execution's 256 KiB of state.
  assert.equal(b['Every object'].ResultWriter.Resource, 'arn:aws:states:::s3:putObject');
  assert.equal(b['Every object'].ResultWriter.Parameters.Prefix, 'backfill-results');
});

test('sizes come from context and are checked', () => {
  const { template: t } = build({ taskCpu: 4096, taskMemoryMiB: 8192, dbInstanceClass: 'm7g.large', backfillConcurrency: 3, dbMultiAz: false });
  t.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '4096', Memory: '8192' });
  t.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceClass: 'db.m7g.large', MultiAZ: false });
  assert.equal(allStates(definitions(t).Backfill)['Every object'].MaxConcurrency, 3);
  assert.throws(() => build({ taskCpu: 'lots' }), /taskCpu/);
  assert.throws(() => build({ logRetentionDays: 31 }), /logRetentionDays/);
});

test('a Fargate cpu/memory pair that Fargate refuses fails synth, naming the valid memory sizes', () => {
  for (const [cpu, memory] of [
    [1024, 512],
    [256, 4096],
    [2048, 2048],
    [8192, 18432],
    [300, 1024],
  ]) {
    assert.throws(
      () => build({ taskCpu: cpu, taskMemoryMiB: memory }),
      /taskCpu=\d+ with taskMemoryMiB=\d+: Fargate.*(memory|cpu)/,
      `${cpu}/${memory}`,
    );
  }
  for (const [cpu, memory] of [
    [256, 512],
    [512, 4096],
    [1024, 8192],
    [4096, 30720],
    [8192, 61440],
    [16384, 122880],
  ]) {
    build({ taskCpu: cpu, taskMemoryMiB: memory });
  }
});

test('dataset specs: in S3 by default, read by create-job only (later steps read the job\'s pinned copy); -c specs=image bakes them in', () => {
  const env = (t: typeof template, step: string) => {
    const c = Object.values(t.findResources('AWS::ECS::TaskDefinition')).map((d: any) => d.Properties.ContainerDefinitions[0])
      .find((c: any) => c.Command[0] === 'task' && c.Command[1] === step);
    return JSON.stringify(c.Environment.find((e: any) => e.Name === 'FERRY_SPECS').Value);
  };
  assert.match(env(template, 'create-job'), new RegExp(`"s3://",\\{"Ref":"${logicalId(stack.specsBucket!)}"\\},"/sql"`));
  assert.equal(template.toJSON().Resources[logicalId(stack.specsBucket!)].Properties.VersioningConfiguration.Status, 'Enabled');
  // Which roles may read the specs bucket: create-job's (and the function's that runs it), nobody else's.
  const readers = Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([, p]: [string, any]) => JSON.stringify(p.Properties.PolicyDocument).includes(logicalId(stack.specsBucket!)))
    .map(([id]) => id.replace(/(TaskRole|ServiceRole)DefaultPolicy.*$/, ''));
  assert.deepEqual(readers.sort(), ['FastPath', 'Taskcreatejob'], 'create-job, and the fast-path function, which runs create-job');
  const { stack: baked, template: bt } = build({ specs: 'image' });
  assert.equal(baked.specsBucket, undefined);
  assert.equal(env(bt, 'transform'), '"/opt/ferry/sql"');
  assert.throws(() => build({ specs: 'git' }), /context specs=git: expected s3 or image/);
});

test('what sql-processor loads is one setting, the same for every step (a spec may still say otherwise)', () => {
  const from = (t: typeof template) => [...new Set(Object.values(t.findResources('AWS::ECS::TaskDefinition'))
    .map((d: any) => d.Properties.ContainerDefinitions[0])
    .filter((c: any) => c.Command[0] === 'task')
    .map((c: any) => c.Environment.find((e: any) => e.Name === 'FERRY_LOAD_FROM')?.Value))];
  assert.deepEqual(from(template), ['pgcopy']);
  assert.deepEqual(from(build({ loadFrom: 'sql' }).template), ['sql']);
  assert.throws(() => build({ loadFrom: 'csv' }), /context loadFrom=csv: expected pgcopy or sql/);
});

test('the CPU architecture is one setting: the tasks and the image built for them', () => {
  const arch = (t: typeof template) =>
    [...new Set(Object.values(t.findResources('AWS::ECS::TaskDefinition')).map((d: any) => d.Properties.RuntimePlatform.CpuArchitecture))];
  assert.deepEqual(arch(template), ['X86_64']);
  const { app, template: arm } = build({ platform: 'arm64', image: undefined });
  assert.deepEqual(arch(arm), ['ARM64']);
  // The image asset is built with an explicit --platform (the Dockerfile cross-compiles for it).
  const assembly = app.synth();
  const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'Ferry.assets.json'), 'utf8'));
  const images = Object.values(manifest.dockerImages as Record<string, { source: { platform?: string; dockerFile?: string } }>);
  assert.deepEqual(images.map((i) => [i.source.dockerFile, i.source.platform]), [['containers/Dockerfile', 'linux/arm64']]);
  assert.throws(() => build({ platform: 'sparc' }), /context platform=sparc: expected amd64 or arm64/);
});

test("state machines log under /aws/vendedlogs/states/ (the logs resource policy's wildcard, not one entry per group)", () => {
  const resources = template.toJSON().Resources as Record<string, any>;
  let machines = 0;
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::StepFunctions::StateMachine') continue;
    machines += 1;
    for (const d of r.Properties.LoggingConfiguration.Destinations) {
      const group = resources[d.CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0]];
      const name = JSON.stringify(group.Properties.LogGroupName ?? '');
      assert.ok(name.includes('/aws/vendedlogs/states/'), `state machine log group named ${name}`);
    }
  }
  assert.equal(machines, 5);
});

test('a stopped or timed-out execution: the reaper stops its tasks (by task group) and ends its job failed', () => {
  const rule = resources('AWS::Events::Rule').find(([id]) => id.startsWith('StoppedExecutions'))![1];
  assert.deepEqual(rule.Properties.EventPattern['detail-type'], ['Step Functions Execution Status Change']);
  assert.deepEqual(rule.Properties.EventPattern.detail.status, ['ABORTED', 'TIMED_OUT']);
  assert.deepEqual(
    rule.Properties.EventPattern.detail.stateMachineArn.map((r: any) => r.Ref.replace(/StateMachine.*$/, '')).sort(),
    ['Converter', 'Loader', 'Orchestrator'],
  );
  const target = rule.Properties.Targets[0];
  assert.match(target.Arn.Ref, /^ReaperStateMachine/);
  assert.ok(target.DeadLetterConfig && target.RetryPolicy, 'undeliverable stop events go to the dead-letter queue');
  const reaper = allStates(definitions(template).Reaper);
  assert.equal(reaper['What was stopped'].Parameters['group.$'], "States.Format('ferry:{}', $.detail.name)");
  // Every step family is searched, and only tasks in the stopped execution's group are stopped.
  const families = Object.values(stack.taskDefinitions).map((d) => d.family);
  assert.deepEqual([...reaper['What was stopped'].Parameters.families].sort(), [...new Set(families)].sort());
  assert.equal(reaper['step family: stop it'].ItemSelector['mine.$'], '$.group');
  assert.deepEqual(reaper['step family: ours?'].Choices[0], { Variable: '$.group', StringEqualsPath: '$.mine', Next: 'step family: stop one' });
  assert.equal(reaper['step family: stop one'].Parameters.Reason, 'ferry: its execution was stopped');
  assert.equal(reaper['step family: next page'].Parameters['NextToken.$'], '$.running.page.NextToken');
  // A Loader or Converter execution's job ends failed with its event.
  const end = reaper['End the job'];
  assert.equal(end.Resource, 'arn:aws:states:::ecs:runTask.waitForTaskToken');
  assert.equal(end.Parameters.Overrides.ContainerOverrides[0]['Command.$'],
    "States.Array('task', 'notify', '--job-id', $.input.job.job_id, '--caught', 'ferry.ExecutionStopped')");
});

test('stages: prod keeps data on cdk destroy; any other stage removes everything it created', () => {
  const kept = ['AWS::S3::Bucket', 'AWS::DynamoDB::Table', 'AWS::EFS::FileSystem', 'AWS::KMS::Key'];
  const res = (t: typeof template) => Object.entries(t.toJSON().Resources as Record<string, any>);
  // prod (the default): data retained, the database snapshotted, deletion protection on.
  for (const [id, r] of res(template)) {
    if (kept.includes(r.Type)) assert.equal(r.DeletionPolicy, 'Retain', `prod ${id}`);
  }
  template.hasResource('AWS::RDS::DBInstance', { DeletionPolicy: 'Snapshot', Properties: Match.objectLike({ DeletionProtection: true }) });
  template.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
  assert.equal(Object.keys(template.findResources('Custom::S3AutoDeleteObjects')).length, 0);
  // dev: nothing retained or protected; every bucket emptied by the stack before it is deleted.
  const { template: dev } = build({ stage: 'dev' });
  for (const [id, r] of res(dev)) {
    assert.ok(!['Retain', 'Snapshot', 'RetainExceptOnCreate'].includes(r.DeletionPolicy), `dev ${id}: ${r.DeletionPolicy}`);
    assert.notEqual(r.Properties?.DeletionProtection, true, `dev ${id}`);
    assert.notEqual(r.Properties?.DeletionProtectionEnabled, true, `dev ${id}`);
  }
  const buckets = Object.keys(dev.findResources('AWS::S3::Bucket'));
  const emptied = Object.values(dev.findResources('Custom::S3AutoDeleteObjects')).map((r: any) => r.Properties.BucketName.Ref);
  assert.deepEqual(emptied.sort(), buckets.sort());
  assert.throws(() => build({ stage: 'Prod!' }), /context stage=Prod!/);
});

test('operable: alarms for what needs a person, each to the ops topic and in the runbook; a dashboard; per-step metrics', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const names = Object.keys(stack.alarms).sort();
  for (const want of ['LoaderFailed', 'LoaderTimedOut', 'LoaderAborted', 'ConverterFailed', 'OrchestratorFailed', 'DeadLetters',
    'DatabaseCpu', 'DatabaseStorage', 'DatabaseConnections', 'WorkStorageIo']) {
    assert.ok(names.includes(want), `no ${want} alarm: ${names}`);
  }
  const ops = stack.getLogicalId(stack.opsTopic.node.defaultChild as never);
  for (const [id, a] of Object.entries(template.findResources('AWS::CloudWatch::Alarm')) as [string, any][]) {
    assert.deepEqual(a.Properties.AlarmActions, [{ Ref: ops }], id);
    const anchor = /Runbook: README.md#(alarm-[a-z0-9]+)/.exec(a.Properties.AlarmDescription)?.[1];
    assert.ok(anchor && readme.includes(`<a id="${anchor}"></a>`), `${id}: runbook entry ${anchor} missing from the README`);
  }
  template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  for (const m of ['StepRows', 'StepBytes', 'StepSeconds', 'StepErrors']) {
    template.hasResourceProperties('AWS::Logs::MetricFilter', { MetricTransformations: [Match.objectLike({ MetricName: m, MetricNamespace: 'Ferry' })] });
  }
  // A task stopped with a non-zero exit reaches the ops topic as it happens.
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: Match.objectLike({ 'detail-type': ['ECS Task State Change'] }),
    Targets: [Match.objectLike({ Arn: { Ref: ops } })],
  });
});
