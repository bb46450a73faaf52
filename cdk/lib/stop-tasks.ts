import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** Which tasks to stop: one step family's running tasks in one task group. */
export interface StopTasksProps {
  cluster: ecs.ICluster;
  /** The task definition family (a name, or a JsonPath to one). */
  family: string;
  /** The group whose tasks are stopped (`ferry:<execution name>`), as a value or JsonPath expression. */
  group: string;
  /** What ECS records as the stop reason. */
  reason: string;
  /** Where to go once every page of running tasks has been looked at. */
  then: sfn.IChainable;
}

/**
 * States that stop the running tasks of one family that belong to one task group, page by page
 * (ListTasks returns at most 100 a call: with more running tasks of a step than that, the one to
 * stop may be on a later page). Used by a step whose state timed out (its own task) and by the
 * reaper (a stopped execution's tasks), so both stop tasks the same way. Returns the first state.
 * The states are named `<label>: …`; they use `$.running` and `$.described` of the state input.
 */
export function stopTasksOfGroup(scope: Construct, label: string, p: StopTasksProps): sfn.IChainable {
  const list = (name: string, next: boolean) =>
    new tasks.CallAwsService(scope, `${label}: ${name}`, {
      service: 'ecs',
      action: 'listTasks',
      parameters: {
        Cluster: p.cluster.clusterArn,
        Family: p.family,
        DesiredStatus: 'RUNNING',
        MaxResults: 100,
        ...(next ? { NextToken: sfn.JsonPath.stringAt('$.running.page.NextToken') } : {}),
      },
      iamResources: ['*'],
      iamAction: 'ecs:ListTasks',
      // The whole page: NextToken is absent on the last one, which a selector could not name.
      resultSelector: { page: sfn.JsonPath.objectAt('$') },
      resultPath: '$.running',
    });
  const first = list('find its task', false);
  const nextPage = list('next page', true);
  const describe = new tasks.CallAwsService(scope, `${label}: describe them`, {
    service: 'ecs',
    action: 'describeTasks',
    parameters: { Cluster: p.cluster.clusterArn, Tasks: sfn.JsonPath.listAt('$.running.page.TaskArns') },
    iamResources: ['*'],
    iamAction: 'ecs:DescribeTasks',
    resultSelector: { tasks: sfn.JsonPath.listAt('$.Tasks') },
    resultPath: '$.described',
  });
  const stopOurs = new sfn.Map(scope, `${label}: stop it`, {
    itemsPath: '$.described.tasks',
    itemSelector: {
      arn: sfn.JsonPath.stringAt('$$.Map.Item.Value.TaskArn'),
      group: sfn.JsonPath.stringAt('$$.Map.Item.Value.Group'),
      mine: p.group,
    },
    maxConcurrency: 10,
    resultPath: sfn.JsonPath.DISCARD,
  });
  stopOurs.itemProcessor(
    new sfn.Choice(scope, `${label}: ours?`)
      .when(
        sfn.Condition.stringEqualsJsonPath('$.group', '$.mine'),
        new tasks.CallAwsService(scope, `${label}: stop one`, {
          service: 'ecs',
          action: 'stopTask',
          parameters: { Cluster: p.cluster.clusterArn, Task: sfn.JsonPath.stringAt('$.arn'), Reason: p.reason },
          iamResources: ['*'],
          iamAction: 'ecs:StopTask',
          resultPath: sfn.JsonPath.DISCARD,
        }),
      )
      .otherwise(new sfn.Pass(scope, `${label}: another execution's`)),
  );
  const more = new sfn.Choice(scope, `${label}: more tasks?`)
    .when(sfn.Condition.isPresent('$.running.page.NextToken'), nextPage)
    .otherwise(p.then);
  const any = new sfn.Choice(scope, `${label}: any running?`)
    .when(sfn.Condition.isPresent('$.running.page.TaskArns[0]'), describe.next(stopOurs).next(more))
    .otherwise(more);
  first.next(any);
  nextPage.next(any);
  return first;
}
