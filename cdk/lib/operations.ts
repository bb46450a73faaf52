import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { FerryStack } from './ferry-stack';
import { FerrySettings } from './settings';

/**
 * Operable for a month: an ops topic, alarms for what needs a person (each one in the README's
 * runbook), metrics from the tasks' per-step log lines, and one dashboard.
 */
export function operate(stack: FerryStack, key: kms.Key, taskLogs: logs.LogGroup, settings: FerrySettings): void {
  // CloudWatch alarms and EventBridge publish to the ops topic, which is encrypted with the events
  // key: both services must be able to use the key, or the notices are lost.
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: ['*'],
    }),
  );
  stack.opsTopic = new sns.Topic(stack, 'OpsAlarms', { masterKey: key, enforceSSL: true, displayName: 'ferry operations' });
  const notify = new cwActions.SnsAction(stack.opsTopic);
  const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, what: string,
    op = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, periods = 1) => {
    const a = new cloudwatch.Alarm(stack, `Alarm-${name}`, {
      alarmName: `${stack.stackName}-${name}`,
      alarmDescription: `${what} Runbook: README.md#alarm-${name.toLowerCase()}`,
      metric,
      threshold,
      evaluationPeriods: periods,
      comparisonOperator: op,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    a.addAlarmAction(notify);
    stack.alarms[name] = a;
    return a;
  };
  const five = { period: Duration.minutes(5), statistic: 'Sum' };
  for (const [label, machine] of Object.entries(stack.stateMachines)) {
    const m = label[0].toUpperCase() + label.slice(1);
    alarm(`${m}Failed`, machine.metricFailed(five), 1, `A ${label} execution failed (a job failed, or the workflow itself).`);
    alarm(`${m}TimedOut`, machine.metricTimedOut(five), 1, `A ${label} execution timed out.`);
    alarm(`${m}Aborted`, machine.metricAborted(five), 1, `A ${label} execution was stopped by hand or by a parent.`);
  }
  alarm('DeadLetters', stack.deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }), 1,
    'Object Created events EventBridge could not deliver to the orchestrator: those files were not processed.');
  // The database's alarms: for one the stack created (an account's own database has its owners' alarms).
  const database = stack.database;
  if (database) {
    alarm('DatabaseCpu', database.metricCPUUtilization({ period: Duration.minutes(5) }), 85,
      'PostgreSQL CPU above 85 % for 15 minutes.', cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 3);
    alarm('DatabaseStorage', database.metricFreeStorageSpace({ period: Duration.minutes(5), statistic: 'Minimum' }),
      settings.dbAllocatedStorageGiB * 1024 ** 3 * 0.1, 'PostgreSQL free storage below 10 % of the allocated size (it grows to 4x, then stops).',
      cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD);
    alarm('DatabaseConnections', database.metricDatabaseConnections({ period: Duration.minutes(5), statistic: 'Maximum' }), 150,
      'More than 150 PostgreSQL connections (each load uses up to its stream count plus one).');
  }
  alarm('WorkStorageIo', new cloudwatch.Metric({
    namespace: 'AWS/EFS', metricName: 'PercentIOLimit', dimensionsMap: { FileSystemId: stack.fileSystem.fileSystemId },
    period: Duration.minutes(5), statistic: 'Maximum',
  }), 95, 'The working storage (EFS) is at its I/O limit: steps slow down.', cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 3);

  // Per-step figures from the tasks' JSON log lines ("step finished" / "step failed").
  const ns = 'Ferry';
  const stepMetric = (name: string, pattern: string, value: string, dims: Record<string, string>) =>
    new logs.MetricFilter(stack, `Metric-${name}`, {
      logGroup: taskLogs,
      filterPattern: logs.FilterPattern.literal(pattern),
      metricNamespace: ns,
      metricName: name,
      metricValue: value,
      dimensions: dims,
    });
  stepMetric('StepRows', '{ $.message = "step finished" }', '$.rows', { step: '$.step' });
  stepMetric('StepBytes', '{ $.message = "step finished" }', '$.bytes', { step: '$.step' });
  stepMetric('StepSeconds', '{ $.message = "step finished" }', '$.seconds', { step: '$.step' });
  stepMetric('StepErrors', '{ $.message = "step failed" }', '1', { error: '$.error_name' });
  // The hourly sweep's report: how long the oldest pending or running job has been at it. A
  // workflow ends every job it runs (a stuck step is stopped), so an old one means a job
  // outside any workflow: an execution stopped by hand, a notify that never ran.
  new logs.MetricFilter(stack, 'Metric-OldestUnfinishedJobSeconds', {
    logGroup: taskLogs,
    filterPattern: logs.FilterPattern.literal('{ $.message = "unfinished jobs" }'),
    metricNamespace: ns,
    metricName: 'OldestUnfinishedJobSeconds',
    metricValue: '$.oldest_unfinished_seconds',
  });
  const oldest = new cloudwatch.Metric({
    namespace: ns, metricName: 'OldestUnfinishedJobSeconds', period: Duration.hours(1), statistic: 'Maximum',
  });
  alarm('OldestRunningJob', oldest, settings.runningJobAlarmHours * 3600,
    `A job has been pending or running for more than ${settings.runningJobAlarmHours} hours.`);
  // A task that stopped with a non-zero exit (crashed, killed, out of memory) goes to the ops topic as it happens.
  new events.Rule(stack, 'FailedTasks', {
    description: 'ferry: a step task stopped with a non-zero exit code',
    eventPattern: {
      source: ['aws.ecs'],
      detailType: ['ECS Task State Change'],
      detail: {
        clusterArn: [stack.cluster.clusterArn],
        lastStatus: ['STOPPED'],
        containers: { exitCode: [{ 'anything-but': 0 }] },
      },
    },
    targets: [new targets.SnsTopic(stack.opsTopic)],
  });

  const loader = stack.stateMachines.loader;
  const hourly = { period: Duration.hours(1), statistic: 'Sum' };
  const metric = (name: string, step: string, statistic = 'Sum') =>
    new cloudwatch.Metric({ namespace: ns, metricName: name, dimensionsMap: { step }, period: Duration.hours(1), statistic });
  stack.dashboard = new cloudwatch.Dashboard(stack, 'Dashboard', { dashboardName: `${stack.stackName}-ferry` });
  stack.dashboard.addWidgets(
    new cloudwatch.GraphWidget({
      title: 'Jobs per hour',
      left: [loader.metricSucceeded(hourly), loader.metricFailed(hourly),
        stack.stateMachines.converter.metricSucceeded(hourly), stack.stateMachines.converter.metricFailed(hourly)],
    }),
    new cloudwatch.GraphWidget({
      title: 'Rows and bytes loaded per hour (sql-processor)',
      left: [metric('StepRows', 'sql-processor')],
      right: [metric('StepBytes', 'sql-processor')],
    }),
    new cloudwatch.GraphWidget({
      title: 'Step duration, p90 seconds',
      left: ['s3-efs-downloader', 'transform', 'sql-processor', 'convert', 'validate', 'efs-s3-uploader'].map((st) =>
        metric('StepSeconds', st, 'p90')),
    }),
    new cloudwatch.GraphWidget({
      title: 'Errors by name',
      left: [...stack.contract.errors.retryable, ...stack.contract.errors.not_retryable].map((e) =>
        new cloudwatch.Metric({ namespace: ns, metricName: 'StepErrors', dimensionsMap: { error: e }, period: Duration.hours(1), statistic: 'Sum', label: e })),
    }),
    new cloudwatch.GraphWidget({
      title: 'Oldest unfinished job, hours',
      left: [new cloudwatch.MathExpression({ expression: 'm / 3600', usingMetrics: { m: oldest }, label: 'hours', period: Duration.hours(1) })],
    }),
    new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(stack.alarms), width: 24 }),
  );
}
