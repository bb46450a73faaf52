import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { commandFor, notifyFailureFlag } from './contract';
import type { FerryStack } from './ferry-stack';
import { StepContext, fargateStep } from './step-machines';
import { stopTasksOfGroup } from './stop-tasks';

/** The error name a job stopped with its execution ends with (engine/src/workflow/answer.rs explains it). */
export const EXECUTION_STOPPED = 'ferry.ExecutionStopped';

/** What the reaper needs from the stack. */
export interface ReaperProps {
  /** What the step states launch their tasks with (the notify step ends the job). */
  steps: StepContext;
  /** The machines whose stopped executions are reaped. */
  machines: sfn.StateMachine[];
  /** The stack's state machine settings (logs, tracing, timeout). */
  machineProps: (definitionBody: sfn.DefinitionBody, comment: string) => sfn.StateMachineProps;
}

/**
 * Every path out of a task state must stop its ECS task, and a task state whose execution is
 * stopped (by hand, by a parent, by the execution's own timeout) has no Catch to do it: a hung
 * task would run, and bill, for ever, and its job would stay `running`. So an EventBridge rule
 * sends every ABORTED or TIMED_OUT execution of the orchestrator, the Loader and the Converter to
 * this state machine, which stops the tasks of the execution's task group (`ferry:<execution
 * name>`, see InTaskGroup) in every step family, then, for a Loader or Converter execution, runs
 * the notify step with `--caught ferry.ExecutionStopped`: the job ends failed, with its event.
 * (A task that is still alive also stops itself at its next heartbeat: its token is gone.)
 */
export function reaper(stack: FerryStack, props: ReaperProps): sfn.StateMachine {
  const scope = new Construct(stack, 'Reaper');
  const contract = stack.contract;
  const families = [...new Set(Object.values(stack.taskDefinitions).map((d) => d.family))];
  const what = new sfn.Pass(scope, 'What was stopped', {
    parameters: {
      group: sfn.JsonPath.format('ferry:{}', sfn.JsonPath.stringAt('$.detail.name')),
      execution: sfn.JsonPath.stringAt('$.detail.executionArn'),
      input: sfn.JsonPath.stringToJson(sfn.JsonPath.stringAt('$.detail.input')),
      families,
    },
  });
  const eachFamily = new sfn.Map(scope, 'Every step family', {
    itemsPath: '$.families',
    itemSelector: { family: sfn.JsonPath.stringAt('$$.Map.Item.Value'), group: sfn.JsonPath.stringAt('$.group') },
    maxConcurrency: 4,
    resultPath: sfn.JsonPath.DISCARD,
  });
  eachFamily.itemProcessor(
    stopTasksOfGroup(scope, 'step family', {
      cluster: stack.cluster,
      family: sfn.JsonPath.stringAt('$.family'),
      group: sfn.JsonPath.stringAt('$.group'),
      reason: 'ferry: its execution was stopped',
      then: new sfn.Pass(scope, 'step family: done'),
    }),
  );

  // The job ends failed, with its event: notify, told what happened.
  const { args, flag } = commandFor(contract, 'notify');
  const endJob = new tasks.EcsRunTask(scope, 'End the job', {
    ...fargateStep(props.steps, 'notify', [
      ...args,
      flag,
      sfn.JsonPath.stringAt('$.input.job.job_id'),
      notifyFailureFlag(contract),
      EXECUTION_STOPPED,
    ]),
    comment: 'ferry task notify --caught ferry.ExecutionStopped: the job is failed and its event sent',
    taskTimeout: sfn.Timeout.duration(Duration.hours(1)),
    resultPath: sfn.JsonPath.DISCARD,
  });
  endJob.addRetry({ errors: [...contract.errors.retryable, 'ECS.AmazonECSException', sfn.Errors.HEARTBEAT_TIMEOUT], maxAttempts: 3 });
  const done = new sfn.Succeed(scope, 'Reaped');
  const definition = what.next(eachFamily).next(
    new sfn.Choice(scope, 'A job\'s workflow?')
      .when(sfn.Condition.isPresent('$.input.job.job_id'), endJob.next(done))
      .otherwise(done),
  );
  const machine = new sfn.StateMachine(
    stack,
    'ReaperStateMachine',
    props.machineProps(
      sfn.DefinitionBody.fromChainable(definition),
      'ferry reaper: the ECS tasks of a stopped execution are stopped, and its job ended',
    ),
  );
  new events.Rule(stack, 'StoppedExecutions', {
    description: 'ferry: a stopped or timed-out execution has its ECS tasks stopped and its job ended',
    eventPattern: {
      source: ['aws.states'],
      detailType: ['Step Functions Execution Status Change'],
      detail: { status: ['ABORTED', 'TIMED_OUT'], stateMachineArn: props.machines.map((m) => m.stateMachineArn) },
    },
    targets: [new targets.SfnStateMachine(machine, { deadLetterQueue: stack.deadLetters, retryAttempts: 8, maxEventAge: Duration.hours(24) })],
  });
  return machine;
}
