// The Lambda fast path: small objects run their whole job in one invocation of the task image;
// the size Choice, the hand-off to ECS, and what the function may do.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { build, definitions, allStates } from './util';
import { HAND_OFF_ERRORS } from '../lib/fast-path';

const { stack, template } = build();
const logicalId = (c: any) => stack.getLogicalId(c.node.defaultChild);

test('the function: the task image with the command `lambda`, in the VPC, on the job folders, capped', () => {
  const fns = template.findResources('AWS::Lambda::Function', { Properties: { PackageType: 'Image' } });
  assert.deepEqual(Object.keys(fns), [logicalId(stack.fastPath)]);
  const p = (Object.values(fns)[0] as any).Properties;
  assert.deepEqual(p.ImageConfig.Command, ['lambda']);
  assert.equal(JSON.stringify(p.Code.ImageUri).includes('ferry:test'), true, 'the same image as the tasks');
  assert.equal(p.Timeout, 900);
  assert.equal(p.MemorySize, 2048);
  assert.equal(p.ReservedConcurrentExecutions, 20);
  assert.equal(p.FileSystemConfigs[0].LocalMountPath, '/mnt/data');
  assert.ok(p.VpcConfig.SubnetIds.length >= 2);
  const env = p.Environment.Variables;
  assert.equal(env.FERRY_WORK_DIR, '/mnt/data');
  assert.equal(env.FERRY_LAMBDA_TIMEOUT_SECONDS, '900');
  assert.equal(env.FERRY_MAX_CONNECTIONS, '2');
  assert.equal(env.PGSSLMODE, 'verify-full');
  assert.deepEqual(env.FERRY_DATABASE_SECRET, { Ref: stack.getLogicalId((stack.database!.secret as any).node.defaultChild) });
  // The password never sits in the function's configuration: ferry reads the secret.
  for (const k of ['PGPASSWORD', 'PGUSER', 'DATABASE_URL']) assert.equal(env[k], undefined, k);
  for (const k of ['FERRY_JOB_STORE', 'FERRY_SPECS', 'FERRY_OUTPUT', 'FERRY_NOTIFY']) {
    const task = (Object.values(template.findResources('AWS::ECS::TaskDefinition')) as any[])
      .map((d) => d.Properties.ContainerDefinitions[0])
      .find((c) => c.Command[1] === 'create-job');
    const same = task.Environment.find((e: any) => e.Name === k).Value;
    assert.deepEqual(env[k], same, `${k} as the tasks have it`);
  }
});

test('the orchestrator routes by size: at most lambdaMaxBytes to the function, anything else (or no size) to create-job', () => {
  const o = definitions(template).Orchestrator;
  const states = allStates(o);
  assert.equal(o.StartAt, 'By size');
  const choice = states['By size'];
  assert.equal(choice.Default, 'create-job');
  assert.deepEqual(choice.Choices[0].And, [
    { Variable: '$.detail.object.size', IsPresent: true },
    { Variable: '$.detail.object.size', IsNumeric: true },
    { Variable: '$.detail.object.size', NumericLessThanEquals: 256 * 1024 * 1024 },
  ]);
  assert.equal(choice.Choices[0].Next, 'Whole job in Lambda');
  const small = allStates(definitions(build({ lambdaMaxBytes: 4096 }).template).Orchestrator)['By size'];
  assert.equal(small.Choices[0].And[2].NumericLessThanEquals, 4096);
  // 0 turns the fast path off: no function, the orchestrator starts at create-job.
  const off = build({ lambdaMaxBytes: 0 });
  assert.equal(off.stack.fastPath, undefined);
  assert.deepEqual(Object.keys(off.template.findResources('AWS::Lambda::Function', { Properties: { PackageType: 'Image' } })), []);
  assert.equal(definitions(off.template).Orchestrator.StartAt, 'create-job');
  assert.throws(() => build({ lambdaTimeoutSeconds: 901 }), /lambdaTimeoutSeconds=901/);
});

test('a Lambda that runs out of time or memory, or is throttled past its retries, hands the object to ECS', () => {
  const states = allStates(definitions(template).Orchestrator);
  const invoke = states['Whole job in Lambda'];
  assert.equal(invoke.Resource, 'arn:aws:states:::lambda:invoke');
  assert.equal(invoke.Parameters['Payload.$'], '$', 'the S3 event, as create-job takes it');
  // A lost invocation only: Lambda ends the function at its own timeout first.
  assert.equal(invoke.TimeoutSeconds, 960);
  const [handOff, failed] = invoke.Catch;
  for (const e of ['Sandbox.Timedout', 'Lambda.Unknown', 'Runtime.OutOfMemory', 'States.Timeout', 'Lambda.TooManyRequestsException']) {
    assert.ok(handOff.ErrorEquals.includes(e), e);
  }
  assert.deepEqual(handOff.ErrorEquals, HAND_OFF_ERRORS);
  // The event goes on unchanged, after the invocation's job lease has run out.
  assert.equal(handOff.ResultPath, null);
  assert.equal(states[handOff.Next].Type, 'Wait');
  assert.equal(states[handOff.Next].Next, 'create-job');
  // ferry's own errors are the job's verdict: the execution fails with them, as on the ECS path.
  assert.deepEqual(failed.ErrorEquals, ['States.ALL']);
  assert.equal(states[failed.Next].Type, 'Fail');
  assert.equal(states[failed.Next].ErrorPath, '$.error.Error');
  for (const e of ['ferry.Input', 'ferry.Target', 'ferry.Config', 'ferry.Invalid']) assert.ok(!handOff.ErrorEquals.includes(e), e);
  // A transient failure is tried once more in Lambda, then handed to ECS (whose steps retry).
  const transient = invoke.Retry.find((r: any) => r.ErrorEquals.includes('ferry.Transient'));
  assert.equal(transient.MaxAttempts, 1);
  assert.ok(handOff.ErrorEquals.includes('ferry.Transient'));
  // A burst past the reserved concurrency queues in jittered retries before it goes to ECS.
  const throttled = invoke.Retry.find((r: any) => r.ErrorEquals.includes('Lambda.TooManyRequestsException'));
  assert.equal(throttled.JitterStrategy, 'FULL');
  assert.ok(throttled.MaxAttempts >= 8);
  assert.equal(states[invoke.Next].Type, 'Succeed');
});

test("the function's role holds what the steps it runs hold, and the database secret; the orchestrator may invoke it", () => {
  const fnRole = logicalId(stack.fastPath!.role);
  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as any[];
  const mine = JSON.stringify(policies.filter((p) => p.Properties.Roles.some((r: any) => r.Ref === fnRole)).map((p) => p.Properties.PolicyDocument));
  for (const action of ['dynamodb:PutItem', 's3:GetObject', 's3:PutObject', 'sns:Publish', 'secretsmanager:GetSecretValue',
    'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite']) {
    assert.ok(mine.includes(action), action);
  }
  assert.ok(!mine.includes('states:SendTask'), 'no task tokens: Step Functions waits for the invocation itself');
  const orch = logicalId(stack.stateMachines.orchestrator.role);
  const theirs = JSON.stringify(policies.filter((p) => p.Properties.Roles.some((r: any) => r.Ref === orch)).map((p) => p.Properties.PolicyDocument));
  assert.ok(theirs.includes('lambda:InvokeFunction') && theirs.includes(logicalId(stack.fastPath)));
});
