// What each workflow step's task role may do: the stack grants exactly this
// (cdk/test/stack.test.ts, 'least privilege', checks each synthesized role; the
// local run under enforced IAM proves the grants are enough).

/** Which AWS APIs a step's task role may call, beyond the job table. */
export interface StepNeeds {
  readInput?: boolean;
  /** Routes inputs, so reads the dataset specs when they are in S3. */
  readSpecs?: boolean;
  writeOutput?: boolean;
  publish?: boolean;
  database?: boolean;
}

/** Least privilege per step: each step's task role gets only what that step does. */
export const NEEDS: Record<string, StepNeeds> = {
  // create-job notifies an unroutable input itself (the job fails before any workflow), and reads
  // an object's ETag/version with a HEAD when the event names neither (backfill).
  'create-job': { publish: true, readInput: true, readSpecs: true },
  's3-efs-downloader': { readInput: true },
  // transform reads the target's catalog to plan the encoded columns.
  transform: { database: true },
  'sql-processor': { database: true },
  convert: {},
  validate: {},
  'efs-s3-uploader': { writeOutput: true },
  notify: { publish: true },
};
