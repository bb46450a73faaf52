import { CfnOutput, Duration, IgnoreMode, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { TaskContract, commandFor, envName, loadContract, REPO_ROOT } from './contract';
import { ExistingInfra, readExistingInfra } from './existing';
import { bySize, fastPath } from './fast-path';
import { operate } from './operations';
import { reaper } from './reaper';
import { StepContext, stepRunner, workflowMachine as buildWorkflow } from './step-machines';
import { NEEDS } from './step-needs';
import { logRetention, prebuiltImage } from './task-parts';
import { FerrySettings, readSettings } from './settings';

/** Where every task mounts the EFS access point; FERRY_WORK_DIR points here. */
export const WORK_MOUNT = '/data';
/** The image's user (containers/Dockerfile) and the access point's owner. */
export const TASK_UID = '10001';
/** Where the image keeps the dataset specs. */
export const SPECS_DIR = '/opt/ferry/sql';
/** The RDS CA bundle the image ships, for sslmode=verify-full. */
export const RDS_CA = '/etc/ssl/certs/rds-global-bundle.pem';
/** Prefix of the output bucket under which file.zip and manifest.json go. */
export const OUTPUT_PREFIX = 'ferry';
/** Prefix of the output bucket under which the backfill's Distributed Map writes its results. */
export const BACKFILL_RESULTS = 'backfill-results';

/**
 * The whole architecture of the reference design: input bucket → EventBridge →
 * orchestrator state machine → Loader or Converter state machine, each step an
 * ECS Fargate task running `ferry task <step>` on a shared EFS working
 * directory; jobs in DynamoDB, tables in RDS PostgreSQL, events on SNS, logs in
 * CloudWatch. Env-agnostic: `cdk synth` needs no account and no network.
 */
export class FerryStack extends Stack {
  readonly settings: FerrySettings;
  readonly contract: TaskContract;
  /** What `-c config=<file.json>` said the account already has (undefined: the stack creates all). */
  readonly existing?: ExistingInfra;
  readonly inputBucket: s3.IBucket;
  readonly outputBucket: s3.IBucket;
  readonly jobs: dynamodb.Table;
  /** Where the tasks read the dataset specs (FERRY_SPECS): s3://bucket/prefix, or the image's folder. */
  readonly specsLocation: string;
  /** The specs' bucket and prefix, when they are in S3. */
  readonly specsBucket?: s3.IBucket;
  readonly specsPrefix: string = 'sql';
  /** The job events topic, when events go to SNS (created, or the account's). */
  readonly topic?: sns.ITopic;
  /** Where the tasks send job events: `sns://<topic ARN>` or `eventbridge://<bus>` (FERRY_NOTIFY). */
  readonly notifyUri: string;
  /** The database the stack created; undefined when the account's own is used. */
  readonly database?: rds.DatabaseInstance;
  readonly fileSystem: efs.FileSystem;
  readonly cluster: ecs.Cluster;
  readonly taskDefinitions: Record<string, ecs.FargateTaskDefinition> = {};
  /** The hourly `ferry jobs gc` task (not a workflow step): sweeps EFS, reports unfinished jobs. */
  readonly gcTask: ecs.FargateTaskDefinition;
  /** The Lambda fast path's function (undefined when lambdaMaxBytes is 0). */
  readonly fastPath?: lambda.DockerImageFunction;
  readonly stateMachines: Record<'orchestrator' | 'loader' | 'converter' | 'backfill' | 'reaper', sfn.StateMachine>;
  readonly rule: events.Rule;
  readonly deadLetters: sqs.Queue;
  /** Where the alarms (and failed ECS tasks) are sent: subscribe the on-call here. */
  opsTopic!: sns.Topic;
  /** The alarms, by name (the README's runbook has one entry per name). */
  readonly alarms: Record<string, cloudwatch.Alarm> = {};
  dashboard!: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const settings = (this.settings = readSettings(this.node));
    const existing = (this.existing = readExistingInfra(this.node));
    const contract = (this.contract = loadContract());
    const retention = logRetention(settings.logRetentionDays);
    // The stage decides what `cdk destroy` leaves: a production stage keeps its data (buckets,
    // jobs table, EFS, the events key retained; the database snapshotted; deletion protection
    // on); any other stage is removed whole (buckets emptied by the stack, nothing protected).
    const prod = settings.stage === 'prod';
    const keep = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // ---- network: tasks in private subnets, the database isolated; or the account's VPC, as given.
    let vpc: ec2.IVpc;
    let taskSubnets: ec2.SubnetSelection;
    if (existing?.vpc) {
      vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', existing.vpc);
      taskSubnets = { subnets: vpc.privateSubnets };
    } else {
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
    vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: settings.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'tasks', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) } },
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    taskSubnets = { subnetGroupName: 'tasks' };
    }
    const tasksSg = new ec2.SecurityGroup(this, 'TasksSecurityGroup', {
      vpc,
      description: 'ferry step tasks: outbound only',
      allowAllOutbound: true,
    });

    // ---- storage: input, output, access logs.
    const ownSpecs = settings.specs === 's3' && !existing?.specsUri;
    const ownBuckets = !existing?.inputBucket || !existing?.outputBucket || ownSpecs;
    const accessLogs = !ownBuckets ? undefined : new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(settings.logRetentionDays) }],
      removalPolicy: keep, autoDeleteObjects: !prod,
    });
    // An account's bucket, with its SSE-KMS key when it has one: grants on the bucket then include the key.
    const theirs = (id: string, bucketName: string, keyArn?: string) =>
      s3.Bucket.fromBucketAttributes(this, id, {
        bucketName,
        encryptionKey: keyArn ? kms.Key.fromKeyArn(this, `${id}BucketKey`, keyArn) : undefined,
      });
    this.inputBucket = existing?.inputBucket ? theirs('Input', existing.inputBucket, existing.bucketKeys?.input) : new s3.Bucket(this, 'Input', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      versioned: true,
      eventBridgeEnabled: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'input/',
      lifecycleRules: [
        { noncurrentVersionExpiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      removalPolicy: keep, autoDeleteObjects: !prod,
    });
    // The account's input bucket sends its events to EventBridge (a custom resource adds exactly
    // that to its notification configuration and keeps the rest).
    if (existing?.inputBucket) this.inputBucket.enableEventBridgeNotification();
    this.outputBucket = existing?.outputBucket ? theirs('Output', existing.outputBucket, existing.bucketKeys?.output) : new s3.Bucket(this, 'Output', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'output/',
      lifecycleRules: [
        {
          transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }],
          expiration: Duration.days(Math.max(settings.outputRetentionDays, 31)),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy: keep, autoDeleteObjects: !prod,
    });

    // ---- dataset specs: in S3 (the default), so a new dataset is an upload (`aws s3 sync sql/
    // s3://<SpecsBucket>/sql/`), not an image build; create-job reads them and pins a copy in the
    // job's folder, which the later steps read. Or baked into the image (-c specs=image).
    let specsBucket: s3.IBucket | undefined;
    let specsPrefix = this.specsPrefix;
    if (settings.specs === 's3' && existing?.specsUri) {
      const [, bucketName, prefix] = /^s3:\/\/([^/]+)\/(.+?)\/*$/.exec(existing.specsUri)!;
      specsBucket = theirs('Specs', bucketName, existing.bucketKeys?.specs);
      specsPrefix = prefix;
    } else if (settings.specs === 's3') {
      specsBucket = new s3.Bucket(this, 'Specs', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        versioned: true,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: 'specs/',
        lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(90) }],
        removalPolicy: keep, autoDeleteObjects: !prod,
      });
    }
    this.specsLocation = specsBucket ? `s3://${specsBucket.bucketName}/${specsPrefix}` : SPECS_DIR;
    this.specsBucket = specsBucket;
    this.specsPrefix = specsPrefix;

    // ---- job records: the layout connectors::jobs::dynamodb expects (from the contract).
    const js = contract.job_store;
    this.jobs = new dynamodb.Table(this, 'Jobs', {
      partitionKey: { name: js.partition_key, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: prod,
      removalPolicy: keep,
    });
    this.jobs.addGlobalSecondaryIndex({
      indexName: js.status_index.name,
      partitionKey: { name: js.status_index.partition_key, type: dynamodb.AttributeType.STRING },
      sortKey: { name: js.status_index.sort_key, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    // ---- job events.
    const key = new kms.Key(this, 'EventsKey', {
      enableKeyRotation: true,
      description: 'ferry: job events (SNS) and the EventBridge dead-letter queue',
      removalPolicy: keep,
      ...(prod ? {} : { pendingWindow: Duration.days(7) }),
    });
    // Job events: a topic of the stack's (the default), the account's topic, or an EventBridge bus.
    const notifyTo = existing?.notify ?? (settings.notify === 'eventbridge' ? { eventBusName: 'default' } : undefined);
    let eventBus: events.IEventBus | undefined;
    if (notifyTo && 'eventBusName' in notifyTo) {
      eventBus = events.EventBus.fromEventBusName(this, 'JobEventsBus', notifyTo.eventBusName);
      this.notifyUri = `eventbridge://${eventBus.eventBusName}`;
    } else {
      this.topic = notifyTo ? sns.Topic.fromTopicArn(this, 'JobEvents', notifyTo.snsTopicArn)
        : new sns.Topic(this, 'JobEvents', { masterKey: key, enforceSSL: true });
      this.notifyUri = `sns://${this.topic.topicArn}`;
    }
    const topicKey = notifyTo && 'snsTopicArn' in notifyTo && notifyTo.kmsKeyArn
      ? kms.Key.fromKeyArn(this, 'JobEventsKey', notifyTo.kmsKeyArn) : undefined;
    const grantNotify = (role: iam.IGrantable) => {
      if (eventBus) eventBus.grantPutEventsTo(role);
      if (this.topic) this.topic.grantPublish(role);
      topicKey?.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
    };
    // A service that writes to a queue or topic encrypted with this key must be able to use the
    // key, or its messages are lost: EventBridge delivers undeliverable events to the
    // dead-letter queue below (the form AWS documents for EventBridge dead-letter queues).
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeWritesDeadLetters',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
      }),
    );

    // ---- working storage (the job folders): EFS through one access point.
    const efsSg = new ec2.SecurityGroup(this, 'WorkSecurityGroup', {
      vpc,
      description: 'ferry working storage: NFS from the step tasks only',
      allowAllOutbound: false,
    });
    efsSg.addIngressRule(tasksSg, ec2.Port.tcp(2049), 'NFS from ferry tasks');
    this.fileSystem = new efs.FileSystem(this, 'Work', {
      vpc,
      vpcSubnets: taskSubnets,
      securityGroup: efsSg,
      encrypted: true,
      throughputMode: efs.ThroughputMode.ELASTIC,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      lifecyclePolicy: efs.LifecyclePolicy.AFTER_14_DAYS,
      enableAutomaticBackups: true,
      removalPolicy: keep,
    });
    const accessPoint = this.fileSystem.addAccessPoint('WorkAccessPoint', {
      path: '/ferry',
      posixUser: { uid: TASK_UID, gid: TASK_UID },
      createAcl: { ownerUid: TASK_UID, ownerGid: TASK_UID, permissions: '750' },
    });

    // ---- PostgreSQL: isolated subnets, TLS forced, credentials only in Secrets Manager; or the
    // account's own (RDS or Aurora), reached at its endpoint with the user and password of its secret.
    const env = (name: string) => envName(contract, name);
    let dbSecret: secretsmanager.ISecret;
    /** Connection variables: from the secret (ECS resolves them at task start), and plain ones. */
    let dbFromSecret: Record<string, string>;
    let dbPlain: Record<string, string> = {};
    let dbSecretKey: kms.IKey | undefined;
    const db = existing?.database;
    if (db) {
      dbSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'ExistingDatabaseSecret', db.secretArn);
      if (db.secretKmsKeyArn) dbSecretKey = kms.Key.fromKeyArn(this, 'DatabaseSecretKey', db.secretKmsKeyArn);
      // One rule on the database's own security group: its port, from the step tasks only.
      ec2.SecurityGroup.fromSecurityGroupId(this, 'DatabaseSecurityGroup', db.securityGroupId)
        .addIngressRule(tasksSg, ec2.Port.tcp(db.port ?? 5432), 'PostgreSQL from ferry tasks');
      dbFromSecret = { PGUSER: 'username', PGPASSWORD: 'password' };
      dbPlain = { PGHOST: db.endpoint, PGPORT: String(db.port ?? 5432), PGDATABASE: db.databaseName };
    } else {
    dbFromSecret = { PGHOST: 'host', PGPORT: 'port', PGUSER: 'username', PGPASSWORD: 'password', PGDATABASE: 'dbname' };
    const dbSg = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc,
      description: 'ferry PostgreSQL: from the step tasks only',
      allowAllOutbound: false,
    });
    dbSg.addIngressRule(tasksSg, ec2.Port.tcp(5432), 'PostgreSQL from ferry tasks');
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 });
    this.database = new rds.DatabaseInstance(this, 'Database', {
      engine,
      instanceType: new ec2.InstanceType(settings.dbInstanceClass),
      vpc,
      vpcSubnets: { subnetGroupName: 'database' },
      securityGroups: [dbSg],
      credentials: rds.Credentials.fromGeneratedSecret('ferry'),
      databaseName: 'ferry',
      multiAz: settings.dbMultiAz,
      allocatedStorage: settings.dbAllocatedStorageGiB,
      maxAllocatedStorage: settings.dbAllocatedStorageGiB * 4,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      iamAuthentication: true,
      deletionProtection: prod,
      backupRetention: Duration.days(7),
      enablePerformanceInsights: true,
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: retention,
      parameterGroup: new rds.ParameterGroup(this, 'DatabaseParameters', {
        engine,
        // max_prepared_transactions: a load with several streams into an
        // existing table commits them together by two-phase commit; one
        // slot per stream of each load at once (0, RDS's default, makes
        // such loads fall back to a staging table and a second pass).
        parameters: { 'rds.force_ssl': '1', max_prepared_transactions: '64' },
      }),
      removalPolicy: prod ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
    });
    this.database.addRotationSingleUser({ automaticallyAfter: Duration.days(30), vpcSubnets: taskSubnets });
    dbSecret = this.database.secret!;
    }

    // ---- the step tasks: one task definition and one role per step.
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const image = settings.image
      ? prebuiltImage(this, settings.image)
      : ecs.ContainerImage.fromAsset(REPO_ROOT, {
          file: 'containers/Dockerfile',
          ignoreMode: IgnoreMode.DOCKER,
          // Built for the tasks' architecture whatever the builder's: the Dockerfile cross-compiles.
          platform: settings.platform === 'arm64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
        });
    const taskLogs = new logs.LogGroup(this, 'TaskLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
    const common: Record<string, string> = {
      [env('FERRY_WORK_DIR')]: WORK_MOUNT,
      [env('FERRY_JOB_STORE')]: `dynamodb://${this.jobs.tableName}`,
      [env('FERRY_NOTIFY')]: this.notifyUri,
      [env('FERRY_OUTPUT')]: `s3://${this.outputBucket.bucketName}/${OUTPUT_PREFIX}`,
      [env('FERRY_SPECS')]: this.specsLocation,
      // transform writes the .pgcopy parts only when sql-processor will load them.
      [env('FERRY_LOAD_FROM')]: settings.loadFrom,
      [env('FERRY_LOG_FORMAT')]: 'json',
      // Heartbeats well inside the states' HeartbeatSeconds.
      [env('FERRY_HEARTBEAT_SECONDS')]: String(Math.max(2, Math.floor(settings.heartbeatSeconds / 4))),
    };
    // A Fargate task definition with the job folders' EFS access point as its `work` volume.
    const workTask = (id: string, cpu: number, memoryLimitMiB: number) =>
      new ecs.FargateTaskDefinition(this, id, {
        cpu,
        memoryLimitMiB,
        runtimePlatform: {
          cpuArchitecture: settings.platform === 'arm64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
        volumes: [
          {
            name: 'work',
            efsVolumeConfiguration: {
              fileSystemId: this.fileSystem.fileSystemId,
              transitEncryption: 'ENABLED',
              authorizationConfig: { accessPointId: accessPoint.accessPointId, iam: 'ENABLED' },
            },
          },
        ],
      });
    const steps = new Set([...contract.workflows.loader, ...contract.workflows.converter]);
    const containers: Record<string, ecs.ContainerDefinition> = {};
    for (const step of steps) {
      const needs = NEEDS[step];
      if (!needs) throw new Error(`no IAM needs declared for ferry step ${step}`);
      const def = workTask(`Task-${step}`, settings.taskCpu, settings.taskMemoryMiB);
      const environment = { ...common };
      const secrets: Record<string, ecs.Secret> = {};
      if (needs.database) {
        // The password reaches the process as an ECS secret: never in the template, the task
        // definition or the logs (ferry reads libpq's PG* variables when DATABASE_URL is unset).
        for (const [name, field] of Object.entries(dbFromSecret)) {
          secrets[env(name)] = ecs.Secret.fromSecretsManager(dbSecret, field);
        }
        for (const [name, value] of Object.entries(dbPlain)) environment[env(name)] = value;
        environment[env('PGSSLMODE')] = 'verify-full';
        environment[env('PGSSLROOTCERT')] = RDS_CA;
      }
      const container = def.addContainer('ferry', {
        image,
        essential: true,
        // The state machines override the command with the job; alone it says what it needs.
        command: commandFor(contract, step).args,
        environment,
        secrets,
        readonlyRootFilesystem: true,
        user: `${TASK_UID}:${TASK_UID}`,
        logging: ecs.LogDrivers.awsLogs({ logGroup: taskLogs, streamPrefix: step }),
      });
      container.addMountPoints({ containerPath: WORK_MOUNT, sourceVolume: 'work', readOnly: false });
      // The root filesystem is read-only; /tmp (the task's local storage, not EFS) holds a
      // Parquet row group's finished pages past 64 MiB until it closes, file.zip's deflated parts
      // until they are merged, and DataFusion's spills of large sorts.
      def.addVolume({ name: 'tmp' });
      container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });
      const role = def.taskRole;
      this.fileSystem.grant(role, 'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite');
      this.jobs.grantReadWriteData(role);
      if (needs.readInput) this.inputBucket.grantRead(role);
      // Only create-job routes, so only it reads the specs; the later steps read the job's copy.
      if (needs.readSpecs && specsBucket) specsBucket.grantRead(role, `${specsPrefix}/*`);
      if (needs.writeOutput) this.outputBucket.grantPut(role, `${OUTPUT_PREFIX}/*`);
      if (needs.publish) grantNotify(role);
      if (needs.database && dbSecretKey) dbSecretKey.grantDecrypt(def.obtainExecutionRole());
      // Task-token callbacks do not support resource-level permissions (IAM requires "*").
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          resources: ['*'],
        }),
      );
      this.taskDefinitions[step] = def;
      containers[step] = container;
    }

    // ---- working storage that does not grow without end: a succeeded job's folder goes when the
    // job ends (notify); once a day `ferry jobs gc` removes failed jobs' folders older than
    // workRetentionDays (never a pending or running job's).
    const gcDef = workTask('Task-gc', 256, 512);
    const gcContainer = gcDef.addContainer('ferry', {
      image,
      essential: true,
      command: ['jobs', 'gc', '--older-than', `${settings.workRetentionDays}d`],
      environment: {
        [env('FERRY_WORK_DIR')]: WORK_MOUNT,
        [env('FERRY_JOB_STORE')]: `dynamodb://${this.jobs.tableName}`,
        [env('FERRY_LOG_FORMAT')]: 'json',
      },
      readonlyRootFilesystem: true,
      user: `${TASK_UID}:${TASK_UID}`,
      logging: ecs.LogDrivers.awsLogs({ logGroup: taskLogs, streamPrefix: 'gc' }),
    });
    gcContainer.addMountPoints({ containerPath: WORK_MOUNT, sourceVolume: 'work', readOnly: false });
    this.fileSystem.grant(gcDef.taskRole, 'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite');
    this.jobs.grantReadData(gcDef.taskRole);
    this.gcTask = gcDef;
    // Hourly: a sweep costs a minute of a 0.25 vCPU task, and its report of the oldest unfinished
    // job feeds the OldestRunningJob alarm.
    new events.Rule(this, 'HourlySweep', {
      description: `ferry: remove failed jobs' folders older than ${settings.workRetentionDays} days from working storage; report unfinished jobs`,
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [
        new targets.EcsTask({
          cluster: this.cluster,
          taskDefinition: gcDef,
          subnetSelection: taskSubnets,
          securityGroups: [tasksSg],
          platformVersion: ecs.FargatePlatformVersion.LATEST,
          retryAttempts: 2,
        }),
      ],
    });

    // ---- state machines.
    // Under /aws/vendedlogs/: CloudWatch Logs' resource policy for vended logs then grows by one
    // wildcard, not an entry per log group (it is capped at 5,120 characters per account and region).
    const sfnLogs = new logs.LogGroup(this, 'StateMachineLogs', {
      logGroupName: `/aws/vendedlogs/states/${this.stackName}-state-machines`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const machineProps = (definitionBody: sfn.DefinitionBody, comment: string): sfn.StateMachineProps => ({
      definitionBody,
      comment,
      stateMachineType: sfn.StateMachineType.STANDARD,
      tracingEnabled: true,
      // Execution data would include task tokens: log the events, not the data.
      logs: { destination: sfnLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    // The states that run each step (lib/step-machines.ts: why .waitForTaskToken, the task group,
    // the retries), and the two workflows built of them.
    const stepCtx: StepContext = {
      cluster: this.cluster,
      taskDefinitions: this.taskDefinitions,
      containers,
      subnets: taskSubnets,
      securityGroup: tasksSg,
      settings,
      contract,
    };
    const runStep = stepRunner(stepCtx);
    const workflowMachine = (wf: 'loader' | 'converter') => buildWorkflow(this, stepCtx, runStep, machineProps, wf);
    const loader = workflowMachine('loader');
    const converter = workflowMachine('converter');
    // RunTask with propagatedTagSource tags the task it starts: without ecs:TagResource on the
    // caller, RunTask is denied as soon as the task definition carries any tag.
    const mayTagTasks = (machine: sfn.StateMachine) =>
      machine.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['ecs:TagResource'],
          resources: [
            Stack.of(this).formatArn({
              service: 'ecs',
              resource: 'task',
              resourceName: `${this.cluster.clusterName}/*`,
            }),
          ],
          conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
        }),
      );
    mayTagTasks(loader);
    mayTagTasks(converter);

    // The orchestrator: create the job once, then run its workflow (or nothing for a duplicate).
    const orch = new Construct(this, 'Orchestrator');
    const createJob = runStep(orch, 'create-job', 'create-job', 'event', '$.job');
    const notCreated = new sfn.Fail(orch, 'NotCreated', {
      comment: 'Unroutable input (already recorded and notified by create-job) or the job store failed',
      causePath: '$.error.Cause',
      errorPath: '$.error.Error',
    });
    createJob.addCatch(notCreated, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
    const startWorkflow = (label: string, machine: sfn.StateMachine) => {
      const t = new tasks.StepFunctionsStartExecution(orch, label, {
        stateMachine: machine,
        integrationPattern: sfn.IntegrationPattern.RUN_JOB,
        associateWithParent: true,
        // Unique per job and attempt: a re-run of a failed job is a new execution.
        name: sfn.JsonPath.format('{}-{}', sfn.JsonPath.stringAt('$.job.job_id'), sfn.JsonPath.stringAt('$.job.attempt')),
        input: sfn.TaskInput.fromObject({ job: sfn.JsonPath.objectAt('$.job') }),
        resultSelector: { status: sfn.JsonPath.stringAt('$.Status'), execution: sfn.JsonPath.stringAt('$.ExecutionArn') },
        resultPath: '$.workflow',
      });
      t.addCatch(new sfn.Fail(orch, `${label} failed`, { causePath: '$.error.Cause', errorPath: '$.error.Error' }), {
        errors: [sfn.Errors.ALL],
        resultPath: '$.error',
      });
      return t.next(new sfn.Succeed(orch, `${label} done`));
    };
    const route = new sfn.Choice(orch, 'Route')
      .when(sfn.Condition.booleanEquals('$.job.run', false), new sfn.Succeed(orch, 'AlreadyHandled', {
        comment: 'A re-delivered event: the job exists and is running or done',
      }))
      .when(sfn.Condition.stringEquals('$.job.workflow', 'loader'), startWorkflow('Run Loader', loader))
      .when(sfn.Condition.stringEquals('$.job.workflow', 'converter'), startWorkflow('Run Converter', converter))
      .otherwise(new sfn.Fail(orch, 'UnknownWorkflow', { error: 'ferry.Config', cause: 'create-job named no known workflow' }));
    const ecsPath = createJob.next(route);
    // Small objects first try the whole job in one Lambda invocation (see fast-path.ts).
    if (settings.lambdaMaxBytes > 0) {
      this.fastPath = fastPath(this, {
        vpc,
        subnets: taskSubnets,
        securityGroup: tasksSg,
        accessPoint,
        environment: common,
        dbPlain,
        dbSecret,
        dbSecretKey,
        rdsCa: RDS_CA,
        grantSpecsAndNotify: (role) => {
          if (specsBucket) specsBucket.grantRead(role, `${specsPrefix}/*`);
          grantNotify(role);
        },
        outputPrefix: OUTPUT_PREFIX,
        retention,
      });
    }
    const start = this.fastPath
      ? bySize(orch, this.fastPath, settings.lambdaMaxBytes, settings.lambdaTimeoutSeconds, ecsPath)
      : ecsPath;
    const orchestrator = new sfn.StateMachine(
      this,
      'OrchestratorStateMachine',
      machineProps(sfn.DefinitionBody.fromChainable(start), 'ferry: one S3 Object Created event → one job → its workflow (small objects in one Lambda invocation)'),
    );
    mayTagTasks(orchestrator);

    // Backfill: every object under a prefix through the orchestrator, a bounded number at once.
    const back = new Construct(this, 'Backfill');
    const perObject = new tasks.StepFunctionsStartExecution(back, 'Run one object', {
      stateMachine: orchestrator,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      associateWithParent: true,
      name: sfn.JsonPath.uuid(),
      // The same shape as EventBridge's Object Created event, so create-job treats both alike. No ETag:
      // create-job reads the object's current ETag and version with a HEAD request, so a backfilled
      // object gets the idempotency key its own event gave it (and loads once).
      input: sfn.TaskInput.fromObject({
        source: 'ferry.backfill',
        'detail-type': 'Object Created',
        detail: {
          bucket: { name: this.inputBucket.bucketName },
          object: { key: sfn.JsonPath.stringAt('$.Key'), size: sfn.JsonPath.numberAt('$.Size') },
        },
      }),
      resultSelector: { status: sfn.JsonPath.stringAt('$.Status') },
    });
    // A failed object is already recorded and notified by its job: the backfill goes on.
    perObject.addCatch(new sfn.Pass(back, 'Object failed (recorded by its job)'), {
      errors: [sfn.Errors.ALL],
      resultPath: '$.error',
    });
    const map = new sfn.DistributedMap(back, 'Every object', {
      itemReader: new sfn.S3ObjectsItemReader({ bucket: this.inputBucket, prefix: sfn.JsonPath.stringAt('$.prefix') }),
      maxConcurrency: settings.backfillConcurrency,
      // A backfill of a million objects would overflow the execution's 256 KiB of state: each
      // child's result goes to the output bucket instead (the failed ones are recorded and
      // notified by their own jobs; this is the map run's own account).
      resultWriterV2: new sfn.ResultWriterV2({ bucket: this.outputBucket, prefix: BACKFILL_RESULTS }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    map.itemProcessor(perObject);
    const backfill = new sfn.StateMachine(
      this,
      'BackfillStateMachine',
      machineProps(sfn.DefinitionBody.fromChainable(map), 'ferry backfill: start with {"prefix": "in/2026/"}'),
    );
    // The map run writes its results into the output bucket: with the account's SSE-KMS key, it
    // needs data keys from it too (the ResultWriter's grant covers only the bucket).
    this.outputBucket.encryptionKey?.grant(backfill, 'kms:GenerateDataKey', 'kms:Decrypt');
    const stateMachines = { orchestrator, loader, converter, backfill };

    // ---- the trigger: Object Created in the input bucket → the orchestrator.
    this.deadLetters = new sqs.Queue(this, 'TriggerDeadLetters', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.rule = new events.Rule(this, 'ObjectCreated', {
      description: 'ferry: every new object in the input bucket starts the orchestrator',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [this.inputBucket.bucketName] } },
      },
    });
    this.rule.addTarget(
      new targets.SfnStateMachine(orchestrator, {
        deadLetterQueue: this.deadLetters,
        retryAttempts: 8,
        maxEventAge: Duration.hours(24),
      }),
    );

    // A stopped (or timed-out) execution's tasks are stopped and its job ended (cdk/lib/reaper.ts).
    const reap = reaper(this, {
      steps: stepCtx,
      machines: [orchestrator, loader, converter],
      machineProps,
    });
    mayTagTasks(reap);
    this.stateMachines = { ...stateMachines, reaper: reap };

    operate(this, key, taskLogs, settings);

    for (const [name, value] of Object.entries({
      OpsTopic: this.opsTopic.topicArn,
      DashboardName: this.dashboard.dashboardName,
      InputBucket: this.inputBucket.bucketName,
      OutputBucket: this.outputBucket.bucketName,
      JobsTable: this.jobs.tableName,
      JobEventsTarget: this.notifyUri,
      DatabaseSecret: dbSecret.secretArn,
      BackfillStateMachineArn: backfill.stateMachineArn,
      SpecsLocation: this.specsLocation,
    })) {
      new CfnOutput(this, name, { value });
    }
  }
}

export { STEP_TIMED_OUT, TASK_LOST } from './step-machines';
