import { Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

// The stack's small ECS and logs helpers, apart from the stack's wiring.

/**
 * A prebuilt image. One in an ECR registry (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`
 * or `@sha256:…`) is referenced as an ECR repository, so every execution role is granted the pull
 * (`ecr:GetAuthorizationToken`, `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`): from a plain
 * registry name ECS would get no permission and every task would fail to start.
 */
export function prebuiltImage(scope: Construct, uri: string): ecs.ContainerImage {
  const ecrImage = prebuiltEcrImage(scope, uri);
  return ecrImage ? ecs.ContainerImage.fromEcrRepository(ecrImage.repository, ecrImage.ref) : ecs.ContainerImage.fromRegistry(uri);
}

/** A prebuilt image's ECR repository and tag or digest; undefined for an image in another registry. */
export function prebuiltEcrImage(scope: Construct, uri: string): { repository: ecr.IRepository; ref: string } | undefined {
  const m = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)(?::([^@]+))?(?:@(.+))?$/.exec(uri);
  if (!m) return undefined;
  const [, account, region, name, tag, digest] = m;
  const partition = uri.includes('.amazonaws.com.cn/') ? 'aws-cn' : Stack.of(scope).partition;
  const id = 'ImageRepository';
  const repository =
    (scope.node.tryFindChild(id) as ecr.IRepository | undefined) ??
    ecr.Repository.fromRepositoryAttributes(scope, id, {
      repositoryArn: `arn:${partition}:ecr:${region}:${account}:repository/${name}`,
      repositoryName: name,
    });
  return { repository, ref: digest ?? tag ?? 'latest' };
}

/**
 * RunTask with its task in the group `ferry:<execution name>`, so a state that times out can tell
 * the task it started from other executions' tasks of the same step and stop it. Group is among
 * the RunTask parameters Step Functions' ECS integration passes (StartedBy is not: Step Functions
 * sets it itself); EcsRunTask has no property for it. The role's ecs:StopTask and
 * ecs:DescribeTasks come with EcsRunTask, ecs:ListTasks with the lookup state.
 */
export class InTaskGroup extends tasks.EcsRunTask {
  protected _renderTask(topLevelQueryLanguage?: sfn.QueryLanguage): any {
    const rendered = super._renderTask(topLevelQueryLanguage);
    rendered.Parameters['Group.$'] = "States.Format('ferry:{}', $$.Execution.Name)";
    return rendered;
  }
}

/** The RetentionDays value for a number of days, or a clear error. */
export function logRetention(days: number): logs.RetentionDays {
  const allowed = Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number' && v > 0);
  if (!allowed.includes(days)) {
    throw new Error(`context logRetentionDays=${days}: CloudWatch Logs accepts ${allowed.join(', ')}`);
  }
  return days as logs.RetentionDays;
}
