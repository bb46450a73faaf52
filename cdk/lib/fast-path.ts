import { Duration, IgnoreMode, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { envName, lambdaCommand, REPO_ROOT } from './contract';
import type { FerryStack } from './ferry-stack';
import { prebuiltEcrImage } from './task-parts';

/** Where the function mounts the job folders' access point (Lambda requires a path under /mnt). */
export const LAMBDA_WORK_MOUNT = '/mnt/data';

/** PostgreSQL connections one sandbox may hold (FERRY_MAX_CONNECTIONS): a small job needs one. */
export const LAMBDA_DB_CONNECTIONS = 2;

/**
 * The errors after which the object goes to the ECS path instead: the invocation ran out of time
 * (Lambda reports Sandbox.Timedout; older runtimes and the optimized integration may say
 * Lambda.Unknown; the state's own timeout is States.Timeout) or memory (Runtime.OutOfMemory, or
 * the process killed: Runtime.ExitError), or Lambda would not run it (throttled past the retries,
 * a service fault), or the job failed transiently (ferry.Transient: a database restart, a
 * throttled service) and a second invocation did too. A job the invocation claimed records the
 * invocation's deadline as its lease's end, so the ECS create-job takes it over; a transiently
 * failed job (not notified by `ferry lambda`) is re-run by it. ferry's other errors (ferry.*)
 * are the job's verdict and fail the execution as they do on the ECS path.
 */
export const HAND_OFF_ERRORS = [
  'ferry.Transient',
  'Sandbox.Timedout',
  'States.Timeout',
  'Lambda.Unknown',
  'Runtime.OutOfMemory',
  'Runtime.ExitError',
  'Lambda.TooManyRequestsException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.EFSMountTimeoutException',
  'Lambda.EFSMountConnectivityException',
  'Lambda.ENILimitReachedException',
];

/** What the function needs from the stack. */
export interface FastPathProps {
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  securityGroup: ec2.ISecurityGroup;
  accessPoint: efs.IAccessPoint;
  /** The tasks' environment (work dir, job store, specs, output, notify…); the work dir is remounted here. */
  environment: Record<string, string>;
  /** Plain database variables (an account's own database: host, port, name). */
  dbPlain: Record<string, string>;
  dbSecret: secretsmanager.ISecret;
  dbSecretKey?: kms.IKey;
  /** The RDS CA bundle path in the image. */
  rdsCa: string;
  /** Grants a role what create-job and notify need of the specs and the events (as the tasks get them). */
  grantSpecsAndNotify: (role: iam.IGrantable) => void;
  outputPrefix: string;
  retention: logs.RetentionDays;
}

/**
 * The fast path: small objects run their whole job in one Lambda invocation of the task image
 * (`ferry lambda`), large ones keep the one-task-per-step ECS path. The function is the task
 * image as a Lambda container image (the same binary, no second build to keep equal); it mounts
 * the same EFS access point, so a job's folder, artifacts and file.zip are where the ECS steps
 * would put them, and it holds the union of the step roles' grants.
 */
export function fastPath(stack: FerryStack, props: FastPathProps): lambda.DockerImageFunction {
  const settings = stack.settings;
  const contract = stack.contract;
  const env = (name: string) => envName(contract, name);
  const cmd = lambdaCommand(contract);
  let code: lambda.DockerImageCode;
  if (settings.image) {
    const ecrImage = prebuiltEcrImage(stack, settings.image);
    if (!ecrImage) {
      throw new Error(
        `context image=${settings.image}: Lambda runs images from ECR only; push it to ECR, or turn the fast path off with -c lambdaMaxBytes=0`,
      );
    }
    code = lambda.DockerImageCode.fromEcr(ecrImage.repository, { tagOrDigest: ecrImage.ref, cmd });
  } else {
    code = lambda.DockerImageCode.fromImageAsset(REPO_ROOT, {
      file: 'containers/Dockerfile',
      ignoreMode: IgnoreMode.DOCKER,
      platform: settings.platform === 'arm64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
      cmd,
    });
  }
  const environment: Record<string, string> = {
    ...props.environment,
    [env('FERRY_WORK_DIR')]: LAMBDA_WORK_MOUNT,
    [env('FERRY_LAMBDA_TIMEOUT_SECONDS')]: String(settings.lambdaTimeoutSeconds),
    [env('FERRY_MAX_CONNECTIONS')]: String(LAMBDA_DB_CONNECTIONS),
    // No runtime fills a Lambda's environment from a secret: ferry reads it itself, once per sandbox.
    [env('FERRY_DATABASE_SECRET')]: props.dbSecret.secretArn,
    [env('PGSSLMODE')]: 'verify-full',
    [env('PGSSLROOTCERT')]: props.rdsCa,
  };
  delete environment[env('FERRY_HEARTBEAT_SECONDS')];
  for (const [name, value] of Object.entries(props.dbPlain)) environment[env(name)] = value;
  const logGroup = new logs.LogGroup(stack, 'FastPathLogs', { retention: props.retention, removalPolicy: RemovalPolicy.DESTROY });
  const fn = new lambda.DockerImageFunction(stack, 'FastPath', {
    description: 'ferry: one small object\'s whole job (create-job … notify) per invocation',
    code,
    architecture: settings.platform === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
    memorySize: settings.lambdaMemoryMiB,
    timeout: Duration.seconds(settings.lambdaTimeoutSeconds),
    reservedConcurrentExecutions: settings.lambdaConcurrency,
    // Step Functions invokes it synchronously and decides what a failure means: no async retries.
    retryAttempts: 0,
    environment,
    vpc: props.vpc,
    vpcSubnets: props.subnets,
    securityGroups: [props.securityGroup],
    filesystem: lambda.FileSystem.fromEfsAccessPoint(props.accessPoint, LAMBDA_WORK_MOUNT),
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
  });
  const role = fn.role!;
  stack.jobs.grantReadWriteData(role);
  stack.inputBucket.grantRead(role);
  stack.outputBucket.grantPut(role, `${props.outputPrefix}/*`);
  props.grantSpecsAndNotify(role);
  props.dbSecret.grantRead(role);
  props.dbSecretKey?.grantDecrypt(role);
  return fn;
}

/**
 * The orchestrator's first state: an object of at most lambdaMaxBytes (the event's size) runs in
 * the function; anything else, or an invocation that ran out of time or memory, goes to `ecsPath`
 * (create-job on ECS and the workflow machines). An object whose event has no size takes ECS.
 */
export function bySize(scope: Construct, fn: lambda.IFunction, maxBytes: number, timeoutSeconds: number, ecsPath: sfn.IChainable): sfn.Choice {
  const invoke = new tasks.LambdaInvoke(scope, 'Whole job in Lambda', {
    lambdaFunction: fn,
    comment: 'ferry lambda: create-job, the workflow\'s steps and notify, in one invocation',
    // The execution's input, the S3 event, is the payload: the function takes what create-job takes.
    payload: sfn.TaskInput.fromJsonPathAt('$'),
    retryOnServiceExceptions: false,
    resultSelector: { job: sfn.JsonPath.objectAt('$.Payload') },
    resultPath: '$.lambda',
    // Past the function's own timeout (Lambda ends it first): only a lost invocation meets this.
    taskTimeout: sfn.Timeout.duration(Duration.seconds(timeoutSeconds + 60)),
  });
  // A burst beyond the reserved concurrency waits its turn (queued by these retries, jittered)
  // before it gives up on Lambda and goes to ECS.
  invoke.addRetry({
    errors: ['Lambda.TooManyRequestsException'],
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxDelay: Duration.seconds(60),
    maxAttempts: 10,
    jitterStrategy: sfn.JitterType.FULL,
  });
  // A transient failure (the job is left failed, not notified): once more after a pause, then ECS.
  invoke.addRetry({ errors: ['ferry.Transient'], interval: Duration.seconds(10), maxAttempts: 1, jitterStrategy: sfn.JitterType.FULL });
  invoke.addRetry({
    errors: ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException'],
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 3,
    jitterStrategy: sfn.JitterType.FULL,
  });
  // The invocation's lease ends at its deadline; the pause makes sure it has passed before
  // create-job looks (Fargate's start alone takes longer in AWS; locally it does not).
  const handOff = new sfn.Wait(scope, 'Hand the object to ECS', {
    comment: 'Lambda could not finish it (time, memory, throttling, a transient failure): its job lease runs out with the invocation',
    time: sfn.WaitTime.duration(Duration.seconds(5)),
  });
  handOff.next(ecsPath);
  invoke.addCatch(handOff, { errors: HAND_OFF_ERRORS, resultPath: sfn.JsonPath.DISCARD });
  invoke.addCatch(
    new sfn.Fail(scope, 'Lambda job failed', {
      comment: 'The job failed (recorded and notified by ferry); its error name is ferry.<class>',
      causePath: '$.error.Cause',
      errorPath: '$.error.Error',
    }),
    { errors: [sfn.Errors.ALL], resultPath: '$.error' },
  );
  invoke.next(new sfn.Succeed(scope, 'Done in Lambda'));
  return new sfn.Choice(scope, 'By size', {
    comment: `Objects of at most ${maxBytes} bytes run their whole job in one Lambda invocation`,
  })
    .when(
      sfn.Condition.and(
        sfn.Condition.isPresent('$.detail.object.size'),
        sfn.Condition.isNumeric('$.detail.object.size'),
        sfn.Condition.numberLessThanEquals('$.detail.object.size', maxBytes),
      ),
      invoke,
    )
    .otherwise(ecsPath);
}
