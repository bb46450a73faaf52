import * as fs from 'fs';
import * as path from 'path';

/**
 * The container-task contract printed by `ferry tasks` and checked in as
 * containers/ferry-tasks.json (a ferry test fails when the file and the CLI
 * differ). The state machines are built from it, so a renamed step, flag or
 * variable breaks `cdk synth` instead of a deployed pipeline.
 */
export interface TaskContract {
  schema: string;
  entrypoint: string;
  workflows: { loader: string[]; converter: string[] };
  /** Per step: its help line, its command, and the output fields it records in the job. */
  steps: Record<string, { summary: string; command: string[]; outputs: string[] }>;
  /** The notify that ends a job a Catch caught: [..., '--job-id', id, '--caught', name]. */
  notify_failure: { command: string[] };
  /** The Lambda fast path's command (one whole job per invocation, the event as payload). */
  lambda?: { command: string[]; payload: string };
  environment: Record<string, { flag: string; help: string }>;
  database_environment: string[];
  job_store: { partition_key: string; status_index: { name: string; partition_key: string; sort_key: string } };
  errors: { retryable: string[]; not_retryable: string[] };
}

/** The repository root (cdk/ sits in it). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Reads and checks the contract; throws with a clear message when it is not usable. */
export function loadContract(file = path.join(REPO_ROOT, 'containers', 'ferry-tasks.json')): TaskContract {
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as TaskContract;
  if (c.schema !== 'ferry.tasks.v2') {
    throw new Error(`${file}: schema ${c.schema}, this app understands ferry.tasks.v2`);
  }
  for (const [wf, steps] of Object.entries(c.workflows)) {
    if (steps[0] !== 'create-job' || steps[steps.length - 1] !== 'notify') {
      throw new Error(`${file}: the ${wf} workflow must start with create-job and end with notify`);
    }
    for (const s of steps) {
      if (!c.steps[s]) throw new Error(`${file}: ${wf} names an unknown step ${s}`);
    }
  }
  return c;
}

/** The variable's name, after checking the CLI reads it (so a typo fails synth). */
export function envName(c: TaskContract, name: string): string {
  if (!c.environment[name] && !c.database_environment.includes(name)) {
    throw new Error(`ferry does not read ${name}; it reads ${Object.keys(c.environment).join(', ')}`);
  }
  return name;
}

/** The command a step runs, with its argument (the event, or the job id) filled in by the state machine. */
export function commandFor(c: TaskContract, step: string): { args: string[]; flag: string } {
  const cmd = c.steps[step]?.command;
  if (!cmd) throw new Error(`ferry has no task step ${step}`);
  // ["task", step, "--event" | "--job-id", "<placeholder>"]: the last item is filled in.
  return { args: cmd.slice(0, -2), flag: cmd[cmd.length - 2] };
}

/** The failure notice's command: notify's, plus the flag that names the caught error. */
export function notifyFailureFlag(c: TaskContract): string {
  const cmd = c.notify_failure?.command;
  const notify = commandFor(c, 'notify');
  if (!cmd || cmd.length !== notify.args.length + 4 || cmd[notify.args.length] !== notify.flag) {
    throw new Error(`ferry's notify_failure command ${JSON.stringify(cmd)} is not notify's plus one flag`);
  }
  return cmd[cmd.length - 2];
}

/** The command the Lambda function runs (the image's CMD there). */
export function lambdaCommand(c: TaskContract): string[] {
  const cmd = c.lambda?.command;
  if (!cmd || cmd.length === 0) throw new Error('this ferry has no lambda command (containers/ferry-tasks.json has no "lambda")');
  return cmd;
}
