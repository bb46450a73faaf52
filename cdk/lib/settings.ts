import { Node } from 'constructs';

/**
 * Sizes and knobs, read from CDK context (`cdk deploy -c taskCpu=4096 …` or
 * cdk.json) so the same template serves a trial and a production account.
 * Context rather than CloudFormation parameters: Fargate CPU/memory pairs and
 * instance classes are validated at synth time, before anything is created.
 */
export interface FerrySettings {
  /** `prod` keeps data on `cdk destroy` (retained, deletion protection); `dev` (or any other name) removes everything. */
  stage: string;
  /** Fargate vCPU units per step task (1024 = 1 vCPU). */
  taskCpu: number;
  /** Fargate memory per step task, MiB (must suit taskCpu). */
  taskMemoryMiB: number;
  /** RDS instance class, e.g. t4g.medium, m7g.large. */
  dbInstanceClass: string;
  /** RDS storage, GiB (grows automatically up to 4×). */
  dbAllocatedStorageGiB: number;
  /** A standby in a second AZ. */
  dbMultiAz: boolean;
  /** Objects processed at once by the backfill state machine. */
  backfillConcurrency: number;
  /** Parts of one split input ([source] split_size) transformed at once, each an ECS task. */
  partConcurrency: number;
  /** CloudWatch Logs retention for tasks, state machines and flow logs, days. */
  logRetentionDays: number;
  /** Days before output artifacts expire. */
  outputRetentionDays: number;
  /** NAT gateways (0 is not enough: tasks reach Step Functions, SNS and ECR). */
  natGateways: number;
  /** A prebuilt image (ECR URI); default: build containers/Dockerfile as a CDK asset. */
  image?: string;
  /** Seconds without a heartbeat before Step Functions counts a task as lost (and stops it). */
  heartbeatSeconds: number;
  /** Days a failed job's folder stays on EFS before the hourly sweep removes it. */
  workRetentionDays: number;
  /** Retries of a step whose task was lost (no heartbeat; the lost task is stopped first). */
  lostTaskRetries: number;
  /** Hours one step may run before its state times out (and its task is stopped). */
  stepTimeoutHours: number;
  /** Hours a job may stay unfinished (pending or running) before the OldestRunningJob alarm fires. */
  runningJobAlarmHours: number;
  /** Where job events go: `sns` (a topic of the stack's) or `eventbridge` (the account's default bus). */
  notify: 'sns' | 'eventbridge';
  /** Where the dataset specs are: `s3` (a bucket of the stack's, or a config's specsUri: a new dataset is an upload) or `image` (baked in: a new dataset is a new image). */
  specs: 's3' | 'image';
  /** What sql-processor loads: the `.pgcopy` parts (binary COPY) or the `.sql` files (a spec's `[target] load_from` wins). */
  loadFrom: 'pgcopy' | 'sql';
  /** The tasks' CPU architecture, and the image's: `amd64` (x86_64) or `arm64` (Graviton, about 20 % cheaper per vCPU-hour). */
  platform: 'amd64' | 'arm64';
  /**
   * Objects of at most this many bytes run their whole job in one Lambda invocation (the fast
   * path); larger ones, and objects whose event carries no size, take the ECS path. 0 turns the
   * fast path off. Default 256 MiB: see README "Small files: the Lambda fast path".
   */
  lambdaMaxBytes: number;
  /** The function's memory, MiB (Lambda gives CPU in proportion: 1,769 MiB is one vCPU). */
  lambdaMemoryMiB: number;
  /** The function's timeout, seconds (Lambda allows 900 at most); a job not done by then goes to ECS. */
  lambdaTimeoutSeconds: number;
  /** Invocations at once (the function's reserved concurrency): the burst cap, and with 2 PostgreSQL connections each, the fast path's share of the database's connections. */
  lambdaConcurrency: number;
}

const DEFAULTS: FerrySettings = {
  stage: 'prod',
  taskCpu: 2048,
  taskMemoryMiB: 4096,
  dbInstanceClass: 't4g.medium',
  dbAllocatedStorageGiB: 100,
  dbMultiAz: true,
  backfillConcurrency: 8,
  partConcurrency: 8,
  logRetentionDays: 30,
  outputRetentionDays: 365,
  natGateways: 1,
  heartbeatSeconds: 120,
  stepTimeoutHours: 12,
  lostTaskRetries: 2,
  workRetentionDays: 7,
  notify: 'sns',
  specs: 's3',
  loadFrom: 'pgcopy',
  platform: 'amd64',
  runningJobAlarmHours: 24,
  lambdaMaxBytes: 256 * 1024 * 1024,
  lambdaMemoryMiB: 2048,
  lambdaTimeoutSeconds: 900,
  lambdaConcurrency: 20,
};

/** Settings from context, each checked; unknown values fail synth with the key's name. */
export function readSettings(node: Node): FerrySettings {
  const num = (key: keyof FerrySettings, min: number, max: number): number => {
    const raw = node.tryGetContext(key);
    const v = raw === undefined ? (DEFAULTS[key] as number) : Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new Error(`context ${key}=${raw}: expected a whole number from ${min} to ${max}`);
    }
    return v;
  };
  const bool = (key: keyof FerrySettings): boolean => {
    const raw = node.tryGetContext(key);
    if (raw === undefined) return DEFAULTS[key] as boolean;
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    throw new Error(`context ${key}=${raw}: expected true or false`);
  };
  const dbInstanceClass = String(node.tryGetContext('dbInstanceClass') ?? DEFAULTS.dbInstanceClass);
  if (!/^[a-z0-9]+\.[a-z0-9]+$/.test(dbInstanceClass)) {
    throw new Error(`context dbInstanceClass=${dbInstanceClass}: expected a class like t4g.medium`);
  }
  const image = node.tryGetContext('image');
  const taskCpu = num('taskCpu', 256, 16384);
  const taskMemoryMiB = num('taskMemoryMiB', 512, 122880);
  checkFargateSize(taskCpu, taskMemoryMiB);
  const stage = String(node.tryGetContext('stage') ?? DEFAULTS.stage);
  if (!/^[a-z][a-z0-9-]{0,15}$/.test(stage)) {
    throw new Error(`context stage=${stage}: expected prod, or a short lowercase name such as dev or test`);
  }
  // A setting that is one of a few words: anything else fails synth, naming them.
  const oneOf = <K extends 'notify' | 'specs' | 'loadFrom' | 'platform'>(key: K, choices: FerrySettings[K][]): FerrySettings[K] => {
    const v = String(node.tryGetContext(key) ?? DEFAULTS[key]) as FerrySettings[K];
    if (!choices.includes(v)) throw new Error(`context ${key}=${v}: expected ${choices.join(' or ')}`);
    return v;
  };
  const notify = oneOf('notify', ['sns', 'eventbridge']);
  const specs = oneOf('specs', ['s3', 'image']);
  const loadFrom = oneOf('loadFrom', ['pgcopy', 'sql']);
  const platform = oneOf('platform', ['amd64', 'arm64']);
  return {
    stage,
    notify,
    specs,
    loadFrom,
    platform,
    taskCpu,
    taskMemoryMiB,
    dbInstanceClass,
    dbAllocatedStorageGiB: num('dbAllocatedStorageGiB', 20, 65536),
    dbMultiAz: bool('dbMultiAz'),
    backfillConcurrency: num('backfillConcurrency', 1, 1000),
    partConcurrency: num('partConcurrency', 1, 1000),
    logRetentionDays: num('logRetentionDays', 1, 3653),
    outputRetentionDays: num('outputRetentionDays', 1, 36500),
    natGateways: num('natGateways', 1, 3),
    heartbeatSeconds: num('heartbeatSeconds', 10, 3600),
    stepTimeoutHours: num('stepTimeoutHours', 1, 168),
    lostTaskRetries: num('lostTaskRetries', 0, 10),
    workRetentionDays: num('workRetentionDays', 1, 365),
    runningJobAlarmHours: num('runningJobAlarmHours', 1, 720),
    image: image === undefined ? undefined : String(image),
    lambdaMaxBytes: num('lambdaMaxBytes', 0, 10 * 1024 ** 3),
    lambdaMemoryMiB: num('lambdaMemoryMiB', 512, 10240),
    lambdaTimeoutSeconds: num('lambdaTimeoutSeconds', 10, 900),
    lambdaConcurrency: num('lambdaConcurrency', 1, 1000),
  };
}

/**
 * Fargate's task sizes: per CPU value, the memory sizes (MiB) it accepts
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html).
 */
const FARGATE_MEMORY: Record<number, number[]> = (() => {
  const range = (from: number, to: number, step: number) =>
    Array.from({ length: (to - from) / step + 1 }, (_, i) => from + i * step);
  return {
    256: [512, 1024, 2048],
    512: range(1024, 4096, 1024),
    1024: range(2048, 8192, 1024),
    2048: range(4096, 16384, 1024),
    4096: range(8192, 30720, 1024),
    8192: range(16384, 61440, 4096),
    16384: range(32768, 122880, 8192),
  };
})();

/** A cpu/memory pair Fargate would refuse at deploy time is an error at synth time instead. */
export function checkFargateSize(cpu: number, memoryMiB: number): void {
  const choices = FARGATE_MEMORY[cpu];
  if (!choices) {
    throw new Error(
      `context taskCpu=${cpu} with taskMemoryMiB=${memoryMiB}: Fargate's cpu is one of ${Object.keys(FARGATE_MEMORY).join(', ')}`,
    );
  }
  if (!choices.includes(memoryMiB)) {
    const shown = choices.length > 8 ? `${choices[0]} to ${choices[choices.length - 1]} in steps of ${choices[1] - choices[0]}` : choices.join(', ');
    throw new Error(`context taskCpu=${cpu} with taskMemoryMiB=${memoryMiB}: Fargate accepts memory ${shown} MiB for this cpu`);
  }
}
