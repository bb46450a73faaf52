import * as fs from 'fs';
import * as path from 'path';
import { Node } from 'constructs';

/**
 * Infrastructure the account already has, which ferry should use instead of creating its own:
 * `npx cdk synth -c config=<file.json>` (see cdk/examples/existing-infra.json and the README's
 * "Deploying into an existing account"). Every part is optional; what is absent, the stack
 * creates. All ids are given, not looked up, so synth stays offline and deterministic.
 */
export interface ExistingInfra {
  /** The VPC the tasks, EFS and their security groups go into. */
  vpc?: {
    vpcId: string;
    /** The AZs of privateSubnetIds, in the same order. */
    availabilityZones: string[];
    /** Subnets with a route to AWS APIs and ECR (NAT or VPC endpoints); tasks and EFS go here. */
    privateSubnetIds: string[];
  };
  /** PostgreSQL already running (RDS or Aurora), reachable from privateSubnetIds. */
  database?: {
    /** Host name the tasks connect to (verify-full checks the certificate against it). */
    endpoint: string;
    port?: number;
    /** The database ferry loads into. */
    databaseName: string;
    /** A Secrets Manager secret with at least `username` and `password` (RDS-managed secrets have exactly those). */
    secretArn: string;
    /** The database's security group; the stack adds one ingress rule: 5432 (or port) from the step tasks. */
    securityGroupId: string;
    /** Optional: the KMS key the secret is encrypted with, when it is a customer-managed key. */
    secretKmsKeyArn?: string;
  };
  /** Bucket names. The input bucket gets EventBridge notifications turned on (nothing else changes). */
  inputBucket?: string;
  outputBucket?: string;
  /** Where the dataset specs are kept: s3://bucket/prefix holding <dataset>/dataset.toml and transform.sql. */
  specsUri?: string;
  /**
   * The customer-managed KMS keys of those buckets, when they use SSE-KMS: the roles that read a
   * bucket may decrypt with its key, the ones that write may generate data keys with it.
   */
  bucketKeys?: { input?: string; output?: string; specs?: string };
  /** Where job events go: an existing SNS topic, or an EventBridge bus ("default" for the account's). */
  notify?: { snsTopicArn: string; kmsKeyArn?: string } | { eventBusName: string };
}

/** The file named by context `config`, checked field by field; undefined when none is given. */
export function readExistingInfra(node: Node): ExistingInfra | undefined {
  const file = node.tryGetContext('config');
  if (file === undefined) return undefined;
  const where = path.resolve(String(file));
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(where, 'utf8'));
  } catch (e) {
    throw new Error(`context config=${file}: ${(e as Error).message}`);
  }
  return checkExistingInfra(raw, `config ${file}`);
}

/** Validates a parsed config: unknown keys and malformed ids fail synth with the field's path. */
export function checkExistingInfra(raw: unknown, where = 'config'): ExistingInfra {
  const fail = (field: string, what: string): never => {
    throw new Error(`${where}: ${field}: ${what}`);
  };
  const obj = (v: unknown, field: string, keys: string[]): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'expected an object');
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!keys.includes(k) && !k.startsWith('//')) fail(`${field}.${k}`, `unknown field (expected one of ${keys.join(', ')})`);
    }
    return o;
  };
  const str = (o: Record<string, unknown>, field: string, pattern: RegExp, what: string, optional = false) => {
    const v = o[field];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || !pattern.test(v)) fail(field, `expected ${what}, got ${JSON.stringify(v)}`);
    return v as string;
  };
  const top = obj(raw, '(top)', ['vpc', 'database', 'inputBucket', 'outputBucket', 'specsUri', 'bucketKeys', 'notify']);
  const out: ExistingInfra = {};
  const bucket = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
  if (top.vpc !== undefined) {
    const v = obj(top.vpc, 'vpc', ['vpcId', 'availabilityZones', 'privateSubnetIds']);
    const list = (field: string, pattern: RegExp, what: string) => {
      const l = v[field];
      if (!Array.isArray(l) || l.length < 2 || !l.every((s) => typeof s === 'string' && pattern.test(s))) {
        fail(`vpc.${field}`, `expected at least two ${what} (two AZs: EFS and the tasks survive one AZ's loss)`);
      }
      return l as string[];
    };
    out.vpc = {
      vpcId: str(v, 'vpcId', /^vpc-[0-9a-f]{8,17}$/, 'a VPC id (vpc-…)')!,
      availabilityZones: list('availabilityZones', /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'AZ names (eu-west-1a, …)'),
      privateSubnetIds: list('privateSubnetIds', /^subnet-[0-9a-f]{8,17}$/, 'subnet ids (subnet-…)'),
    };
    if (out.vpc.availabilityZones.length !== out.vpc.privateSubnetIds.length) {
      fail('vpc', 'availabilityZones and privateSubnetIds must pair up, one AZ per subnet');
    }
  }
  if (top.database !== undefined) {
    const d = obj(top.database, 'database', ['endpoint', 'port', 'databaseName', 'secretArn', 'securityGroupId', 'secretKmsKeyArn']);
    const port = d.port === undefined ? 5432 : d.port;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) fail('database.port', 'expected a port number');
    out.database = {
      endpoint: str(d, 'endpoint', /^[a-zA-Z0-9.-]+$/, 'a host name')!,
      port: port as number,
      databaseName: str(d, 'databaseName', /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, 'a database name')!,
      secretArn: str(d, 'secretArn', /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/,
        'the complete ARN of a Secrets Manager secret (with its 6-character suffix)')!,
      securityGroupId: str(d, 'securityGroupId', /^sg-[0-9a-f]{8,17}$/, 'a security group id (sg-…)')!,
      secretKmsKeyArn: str(d, 'secretKmsKeyArn', /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/, 'a KMS key ARN', true),
    };
    if (!out.vpc) fail('database', 'an existing database needs the existing vpc it is reachable from');
  }
  if (top.inputBucket !== undefined) out.inputBucket = str(top, 'inputBucket', bucket, 'a bucket name');
  if (top.outputBucket !== undefined) out.outputBucket = str(top, 'outputBucket', bucket, 'a bucket name');
  if (top.specsUri !== undefined) {
    out.specsUri = str(top, 'specsUri', /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[A-Za-z0-9!_.*'()\/-]+$/, 's3://bucket/prefix');
  }
  if (top.bucketKeys !== undefined) {
    const k = obj(top.bucketKeys, 'bucketKeys', ['input', 'output', 'specs']);
    const key = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/;
    out.bucketKeys = {
      input: str(k, 'input', key, 'a KMS key ARN', true),
      output: str(k, 'output', key, 'a KMS key ARN', true),
      specs: str(k, 'specs', key, 'a KMS key ARN', true),
    };
    for (const [which, bucketGiven] of [['input', out.inputBucket], ['output', out.outputBucket], ['specs', out.specsUri]] as const) {
      if (out.bucketKeys[which] && !bucketGiven) fail(`bucketKeys.${which}`, `a key for the ${which} bucket needs that bucket in the config`);
    }
  }
  if (top.notify !== undefined) {
    const n = obj(top.notify, 'notify', ['snsTopicArn', 'kmsKeyArn', 'eventBusName']);
    if ((n.snsTopicArn === undefined) === (n.eventBusName === undefined)) {
      fail('notify', 'give snsTopicArn or eventBusName, not both');
    }
    out.notify = n.snsTopicArn !== undefined
      ? {
          snsTopicArn: str(n, 'snsTopicArn', /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$/, 'an SNS topic ARN')!,
          kmsKeyArn: str(n, 'kmsKeyArn', /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/, 'a KMS key ARN', true),
        }
      : { eventBusName: str(n, 'eventBusName', /^[A-Za-z0-9._\-/]{1,256}$/, 'an event bus name')! };
  }
  return out;
}
