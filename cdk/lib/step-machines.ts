import { Duration, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { TaskContract, commandFor, envName, notifyFailureFlag } from './contract';
import { FerrySettings } from './settings';
import { stopTasksOfGroup } from './stop-tasks';
import { InTaskGroup } from './task-parts';

/** A step's task sent no heartbeat within HeartbeatSeconds; it was stopped (retried). */
export const TASK_LOST = 'ferry.TaskLost';
/** A step ran past its state's TimeoutSeconds; its task was stopped (not retried). */
export const STEP_TIMED_OUT = 'ferry.StepTimedOut';

/** What the states that run `ferry task <step>` need from the stack. */
export interface StepContext {
  readonly cluster: ecs.ICluster;
  readonly taskDefinitions: Record<string, ecs.FargateTaskDefinition>;
  readonly containers: Record<string, ecs.ContainerDefinition>;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly settings: FerrySettings;
  readonly contract: TaskContract;
}

/**
 * A state running one step as an ECS task: `label` names it in `scope`; `argument` is what the
 * command gets (the event, the job id, the caught failure, or a part of a split input);
 * `environment` is added to the container's.
 */
export type RunStep = (
  scope: Construct,
  label: string,
  step: string,
  argument: 'event' | 'job id' | 'failure' | 'part',
  resultPath: string,
  environment?: tasks.TaskEnvironmentVariable[],
) => sfn.Parallel;

// Each step is an ECS task started with .waitForTaskToken, not .sync: .sync gives the next state
// only ECS's description of the stopped task, while the token lets ferry answer with its own
// output (job id, rows, outputs) for the next step and the Choice; heartbeats catch a lost
// task within heartbeatSeconds instead of at the task timeout.
//
// Only the job id travels in the container overrides (ECS caps them at 8 KiB; a job with a
// 1,024-byte key and a 32 KiB error would not fit): each step reads the job from its record.
//
// A .waitForTaskToken state that times out leaves its task running (billing, maybe writing):
// Step Functions stops only .sync tasks. So each step is a Parallel of one branch whose task is
// started in the ECS task group `ferry:<execution name>` (RunTask's Group; Step Functions does
// not pass StartedBy). On a timeout (heartbeat or overall) the branch lists the step's running
// tasks, stops the ones in its group, and fails as ferry.TaskLost (no heartbeat: retried) or
// ferry.StepTimedOut, for the Parallel's Retry and Catch. (Step Functions reserves "States."
// names: a Fail state cannot re-raise them.) A task whose token is gone also stops itself at
// its next heartbeat (exit 5).
export function stepRunner(ctx: StepContext): RunStep {
  const { settings, contract } = ctx;
  const runStep: RunStep = (scope, label, step, argument, resultPath, environment = []) => {
    const { args, flag } = commandFor(contract, step);
    const value =
      argument === 'event'
        ? sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$'))
        : sfn.JsonPath.stringAt('$.job.job_id');
    const extra =
      argument === 'failure'
        ? [notifyFailureFlag(contract), sfn.JsonPath.stringAt('$.job.error.Error')]
        : argument === 'part'
          ? ['--part', sfn.JsonPath.format('{}', sfn.JsonPath.stringAt('$.part'))]
          : [];
    const def = ctx.taskDefinitions[step];
    const task = new InTaskGroup(scope, `${label}: task`, {
      ...fargateStep(ctx, step, [...args, flag, value, ...extra], environment),
      comment: contract.steps[step].summary,
      taskTimeout: sfn.Timeout.duration(Duration.hours(settings.stepTimeoutHours)),
      resultPath,
    });
    const lost = new sfn.Fail(scope, `${label}: lost`, {
      error: TASK_LOST,
      cause: `the ${step} task sent no heartbeat for ${settings.heartbeatSeconds} s (a lost host, a hung process); it was stopped`,
    });
    const timedOut = new sfn.Fail(scope, `${label}: timed out`, {
      error: STEP_TIMED_OUT,
      cause: `the ${step} step ran past ${settings.stepTimeoutHours} h; its task was stopped`,
    });
    const rethrow = new sfn.Choice(scope, `${label}: which timeout`)
      .when(sfn.Condition.stringEquals('$.error.Error', sfn.Errors.HEARTBEAT_TIMEOUT), lost)
      .otherwise(timedOut);
    task.addCatch(
      stopTasksOfGroup(scope, label, {
        cluster: ctx.cluster,
        family: def.family,
        group: sfn.JsonPath.format('ferry:{}', sfn.JsonPath.executionName),
        reason: `ferry: the ${step} state timed out`,
        then: rethrow,
      }),
      { errors: [sfn.Errors.HEARTBEAT_TIMEOUT, sfn.Errors.TIMEOUT], resultPath: '$.error' },
    );
    const wrapped = new sfn.Parallel(scope, label, {
      comment: `${contract.steps[step].summary} (its ECS task is stopped if the state times out)`,
      outputPath: '$[0]',
    });
    wrapped.branch(task);
    // Retry only what a retry can mend: ferry.Transient (network, throttling, a restarted
    // database) and ECS refusing to place the task; and, fewer times, a lost task (no heartbeat:
    // a reclaimed host, a hung process — stopped above before the next attempt starts).
    wrapped.addRetry({
      errors: [...contract.errors.retryable, 'ECS.AmazonECSException'],
      interval: Duration.seconds(15),
      backoffRate: 2,
      maxAttempts: 4,
      maxDelay: Duration.minutes(5),
      jitterStrategy: sfn.JitterType.FULL,
    });
    if (settings.lostTaskRetries > 0) {
      wrapped.addRetry({
        errors: [TASK_LOST],
        interval: Duration.seconds(15),
        backoffRate: 2,
        maxAttempts: settings.lostTaskRetries,
        jitterStrategy: sfn.JitterType.FULL,
      });
    }
    return wrapped;
  };
  return runStep;
}

/**
 * How a state launches `ferry task <step>`: on Fargate in the stack's private subnets, tagged from
 * its task definition, with the task token in its environment for its answer and heartbeats, and
 * `command` (JSONPath items allowed) as the container's command. The step states and the reaper's
 * `End the job` share it and differ only in their timeout and where their result goes.
 */
export function fargateStep(
  ctx: StepContext,
  step: string,
  command: string[],
  environment: tasks.TaskEnvironmentVariable[] = [],
) {
  return {
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    cluster: ctx.cluster,
    taskDefinition: ctx.taskDefinitions[step],
    launchTarget: new tasks.EcsFargateLaunchTarget({ platformVersion: ecs.FargatePlatformVersion.LATEST }),
    subnets: ctx.subnets,
    securityGroups: [ctx.securityGroup],
    assignPublicIp: false,
    propagatedTagSource: ecs.PropagatedTagSource.TASK_DEFINITION,
    containerOverrides: [
      {
        containerDefinition: ctx.containers[step],
        command: Token.asList(sfn.JsonPath.array(...command)),
        environment: [{ name: envName(ctx.contract, 'FERRY_TASK_TOKEN'), value: sfn.JsonPath.taskToken }, ...environment],
      },
    ],
    heartbeatTimeout: sfn.Timeout.duration(Duration.seconds(ctx.settings.heartbeatSeconds)),
  } satisfies Partial<tasks.EcsRunTaskProps>;
}

/**
 * The Loader's or the Converter's state machine: its steps in the contract's order, each through
 * `runStep`, a failure caught into `notify failure`, and a split input's parts in a Distributed Map.
 */
export function workflowMachine(
  stack: Construct,
  ctx: StepContext,
  runStep: RunStep,
  machineProps: (definitionBody: sfn.DefinitionBody, comment: string) => sfn.StateMachineProps,
  wf: 'loader' | 'converter',
): sfn.StateMachine {
  const { settings, contract } = ctx;
  const scope = new Construct(stack, wf === 'loader' ? 'Loader' : 'Converter');
  const failed = new sfn.Fail(scope, 'Failed', {
    comment: 'The job failed; its record and event say why',
    causePath: '$.job.error.Cause',
    errorPath: '$.job.error.Error',
  });
  const notifyFailure = runStep(scope, 'notify failure', 'notify', 'failure', sfn.JsonPath.DISCARD);
  notifyFailure.next(failed);
  // The job is failed and notified even if the failure notice cannot be sent.
  notifyFailure.addCatch(failed, { errors: [sfn.Errors.ALL], resultPath: sfn.JsonPath.DISCARD });
  const middle = contract.workflows[wf].slice(1, -1);
  // The Loader's transform and the Converter's convert leave a split input's parts
  // ([source] split_size) to a Distributed Map, one ECS task per part, instead of running them
  // in their own task.
  const splitting = ['transform', 'convert'];
  const deferParts = [{ name: envName(contract, 'FERRY_DEFER_PARTS'), value: 'true' }];
  const states = middle.map((step) => {
    const t = runStep(scope, step, step, 'job id', '$.job', splitting.includes(step) ? deferParts : []);
    t.addCatch(notifyFailure, { errors: [sfn.Errors.ALL], resultPath: '$.job.error' });
    return t;
  });
  const notify = runStep(scope, 'notify', 'notify', 'job id', '$.job');
  notify.addCatch(failed, { errors: [sfn.Errors.ALL], resultPath: '$.job.error' });
  const definition: sfn.IChainable & sfn.INextable = states[0];
  let chain = sfn.Chain.start(states[0]);
  for (const [i, s] of states.slice(1).entries()) {
    const splitter = middle[i];
    if (splitting.includes(splitter)) {
      // transform (convert) outputs "parts" only for a split input: each part is then its own
      // task, and sql-processor loads them all as one load (validate reads every part of the
      // Parquet dataset back); otherwise straight on.
      const part = runStep(scope, `${splitter} part`, splitter, 'part', sfn.JsonPath.DISCARD);
      const eachPart = new sfn.DistributedMap(scope, `${splitter} each part`, {
        itemsPath: '$.job.outputs.parts',
        itemSelector: {
          job: { job_id: sfn.JsonPath.stringAt('$.job.job_id') },
          part: sfn.JsonPath.numberAt('$$.Map.Item.Value'),
        },
        maxConcurrency: settings.partConcurrency,
        resultPath: sfn.JsonPath.DISCARD,
      });
      eachPart.itemProcessor(part);
      eachPart.addCatch(notifyFailure, { errors: [sfn.Errors.ALL], resultPath: '$.job.error' });
      eachPart.next(s);
      const split = new sfn.Choice(scope, 'split into parts?')
        .when(sfn.Condition.isPresent('$.job.outputs.parts'), eachPart)
        .otherwise(s);
      chain.next(split);
      chain = sfn.Chain.start(s);
      continue;
    }
    chain = chain.next(s);
  }
  chain.next(notify).next(new sfn.Succeed(scope, 'Done'));
  return new sfn.StateMachine(
    stack,
    `${wf === 'loader' ? 'Loader' : 'Converter'}StateMachine`,
    machineProps(
      sfn.DefinitionBody.fromChainable(definition),
      `ferry ${wf}: ${contract.workflows[wf].join(' → ')} (a split input: ${wf === 'loader' ? 'transform' : 'convert'} each part in a Distributed Map)`,
    ),
  );
}
