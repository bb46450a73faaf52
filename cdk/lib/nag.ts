import { CfnResource, Validations } from 'aws-cdk-lib';
import { Construct, IConstruct } from 'constructs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { FerryStack } from './ferry-stack';
// cdk-nag's own rendering of a resource in a finding id (pinned version; the finding ids must match it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { flattenCfnReference } = require('cdk-nag/lib/utils/flatten-cfn-reference') as {
  flattenCfnReference: (r: unknown) => string;
};

/** One accepted cdk-nag finding: where, which rule (or finding), and why it is safe. */
export interface Acknowledgement {
  scope: IConstruct;
  id: string;
  reason: string;
}

/**
 * Every cdk-nag AwsSolutions finding the stack accepts, each with the reason
 * it survives a security review. Anything not listed fails synth and the tests.
 */
export function acknowledgements(stack: FerryStack): Acknowledgement[] {
  // How cdk-nag names a resource in a finding: the stack's own by logical id, an imported bucket by its ARN.
  const ref = (c: IConstruct) => {
    const own = c.node.defaultChild as CfnResource | undefined;
    if (own) return `<${stack.getLogicalId(own)}.Arn>`;
    return `arn:<AWS::Partition>:s3:::${(c as unknown as { bucketName: string }).bucketName}`;
  };
  const list: Acknowledgement[] = [
    {
      scope: stack,
      id: 'AwsSolutions-ECS2',
      reason:
        'Plain environment variables carry only non-secret settings (resource names, the work mount, log format). ' +
        'Database credentials reach the tasks as ECS secrets from Secrets Manager; the task token is a per-execution ' +
        'container override, the documented Step Functions callback pattern.',
    },
    {
      scope: stack,
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        "Only CDK's own custom-resource Lambdas (turning on the input bucket's EventBridge notifications; setting " +
        'the RDS log group retention) use it; it grants CloudWatch Logs writes and nothing else.',
    },
    {
      scope: stack,
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only for APIs without resource-level permissions: states:SendTaskSuccess/Failure/Heartbeat (the task token ' +
        'names the execution), X-Ray PutTraceSegments and the CloudWatch Logs delivery APIs state machine logging ' +
        "uses, and CDK's log-retention handler.",
    },
    {
      scope: stack,
      id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      reason: 'Publishing to the KMS-encrypted job-events topic needs GenerateDataKey* on that one key.',
    },
    {
      scope: stack,
      id: `AwsSolutions-IAM5[Resource::${ref(stack.jobs)}/index/*]`,
      reason: 'The job store queries the jobs table by status through its own index (ferry jobs list).',
    },
    {
      scope: stack,
      id: `AwsSolutions-IAM5[Resource::${ref(stack.inputBucket)}/*]`,
      reason:
        'The s3-efs-downloader reads whichever object (and version) the event names, and create-job reads its ' +
        'metadata (HEAD) when an event carries no ETag: keys are not known in advance.',
    },
    {
      scope: stack,
      id: 'AwsSolutions-IAM5[Action::s3:GetObject*]',
      reason:
        'Read-only object access (object and version, with their tags) for the downloader and create-job, on the ' +
        'input bucket only.',
    },
    {
      scope: stack,
      id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]',
      reason: 'Bucket metadata reads for the downloader and the backfill listing, on the input bucket only.',
    },
    {
      scope: stack,
      id: 'AwsSolutions-IAM5[Action::s3:List*]',
      reason: 'Listing the input bucket: the downloader checks versions, the backfill map lists a prefix.',
    },
    {
      scope: stack,
      id: `AwsSolutions-IAM5[Resource::${ref(stack.outputBucket)}/ferry/*]`,
      reason: 'The efs-s3-uploader writes job artifacts under the ferry/ prefix of the output bucket only.',
    },
    {
      scope: stack,
      id: 'AwsSolutions-IAM5[Action::s3:Abort*]',
      reason: 'The uploader aborts its own failed multipart uploads, under the ferry/ prefix only.',
    },
    {
      scope: stack.deadLetters,
      id: 'AwsSolutions-SQS3',
      reason: "This queue is the EventBridge rule's dead-letter queue; a dead-letter queue for it would only move the problem.",
    },
  ];
  if (stack.existing?.bucketKeys?.output) {
    list.push({
      scope: stack,
      id: 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]',
      reason:
        "Writing to the account's SSE-KMS output bucket: CDK's put grant on a bucket with a key includes its data-key " +
        'actions, on that one key only (config bucketKeys.output).',
    });
  }
  if (stack.fastPath) {
    list.push({
      scope: stack.fastPath,
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      reason:
        'The fast-path function runs in the tasks\' subnets (EFS job folders, the database): Lambda needs the network ' +
        'interface actions this policy grants, which have no resource-level form, and its CloudWatch Logs writes.',
    });
  }
  if (stack.specsBucket) {
    list.push({
      scope: stack,
      id: `AwsSolutions-IAM5[Resource::${ref(stack.specsBucket)}/${stack.specsPrefix}/*]`,
      reason:
        'create-job reads the dataset specs under the specs prefix (one folder per dataset, added by upload, names ' +
        'not known at deploy time); it is the only step that reads them.',
    });
  }
  const database = stack.database;
  if (database) {
    list.push({
      scope: database,
      id: 'AwsSolutions-RDS11',
      reason:
        'The database is in isolated subnets and its security group admits only the step tasks; a non-default port ' +
        'would add obscurity, not protection.',
    });
  }
  if (database && !stack.settings.dbMultiAz) {
    list.push({
      scope: database,
      id: 'AwsSolutions-RDS3',
      reason:
        'Single-AZ was chosen explicitly (context dbMultiAz=false, for trials); the default deployment is multi-AZ, ' +
        'and loads are atomic, so a failover interrupts a job (retried) without corrupting a table.',
    });
  }
  if (database && stack.settings.stage !== 'prod') {
    list.push({
      scope: database,
      id: 'AwsSolutions-RDS10',
      reason:
        `A non-production stage (context stage=${stack.settings.stage}) is removed whole by cdk destroy, database ` +
        'included; the prod stage (the default) keeps deletion protection and a final snapshot.',
    });
  }
  // State machine roles: RunTask on the step task definitions at any revision (every deploy adds one), and
  // Describe/StopExecution on the child executions, whose names are known only at run time. Only the
  // wildcard resources of exactly those actions are accepted, finding by finding.
  const narrow: Record<string, string> = {
    'ecs:RunTask': "ecs:RunTask on one of ferry's step task definitions, at any revision (every deploy adds one)",
    'states:DescribeExecution': 'Describe/StopExecution on the executions this state machine starts (names known at run time)',
    'states:StopExecution': 'Describe/StopExecution on the executions this state machine starts (names known at run time)',
    'states:RedriveExecution': "redriving its own Distributed Map runs' child executions (names known at run time)",
    'lambda:InvokeFunction': 'invoking the fast-path function, at any version or alias an integration may name',
    'ecs:TagResource':
      'tagging the step tasks it starts in the ferry cluster (propagatedTagSource; task ids known at run time, RunTask only)',
  };
  // The backfill's Distributed Map writes its results (ResultWriter) as multipart uploads into the output bucket;
  // the object names are chosen by Step Functions per map run.
  const resultWriter = 'writing its Distributed Map results to the output bucket (object names chosen by Step Functions per map run)';
  for (const a of ['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject']) {
    narrow[a] = resultWriter;
  }
  // The same for the role EventBridge starts the hourly sweep task with.
  const sweepRole = stack.gcTask.node.tryFindChild('EventsRole') as iam.Role | undefined;
  const roles: [string, Construct[]][] = [
    ...Object.entries(stack.stateMachines).map(([name, machine]): [string, Construct[]] => [
      `The ${name} state machine`,
      [machine.role.node.tryFindChild('DefaultPolicy'), machine.node.tryFindChild('DistributedMapPolicy')].filter(
        (c): c is Construct => c !== undefined,
      ),
    ]),
    ['The hourly working-storage sweep rule', sweepRole ? [sweepRole.node.tryFindChild('DefaultPolicy')!] : []],
  ];
  for (const [name, parts] of roles) {
    const policies = parts
      .map((p) => p?.node.defaultChild as CfnResource | undefined)
      .filter((p): p is CfnResource => p !== undefined);
    for (const policy of policies) {
      const doc = stack.resolve((policy as unknown as { policyDocument: unknown }).policyDocument) as {
        Statement: { Effect: string; Action: string | string[]; Resource: unknown }[];
      };
      for (const st of doc.Statement) {
        const actions = ([] as string[]).concat(st.Action);
        const why = actions.map((a) => narrow[a]).find((r) => r);
        if (st.Effect !== 'Allow' || !why || actions.some((a) => !narrow[a])) continue;
        for (const r of ([] as unknown[]).concat(st.Resource)) {
          const flat: string = flattenCfnReference(r);
          if (flat.includes('*')) {
            list.push({
              scope: policy,
              id: `AwsSolutions-IAM5[Resource::${flat}]`,
              reason: `${name}: ${why}.`,
            });
          }
        }
      }
    }
  }
  return list;
}

/** Acknowledges the findings above (anything else fails synth and the tests). */
export function acknowledgeFindings(stack: FerryStack): void {
  for (const a of acknowledgements(stack)) {
    Validations.of(a.scope).acknowledge({ id: a.id, reason: a.reason });
  }
}
