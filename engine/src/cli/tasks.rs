//! `ferry tasks`: the container-task contract the CDK app builds its state
//! machines from.

use ferry_engine::error::Class;
use ferry_engine::workflow::{Step, steps};
use serde_json::{Value, json};

pub const TASKS_HELP: &str = "\
containers/ferry-tasks.json is this output, checked in; a test fails when the
two differ, so the state machines cannot drift from the CLI:
  ferry tasks > containers/ferry-tasks.json";

/// The container-task contract, read off the CLI's own definitions: the
/// step names and their help, which flag and variable carries each setting,
/// and the error names a state machine's Retry/Catch sees. `cdk/` builds the
/// state machines from the checked-in copy (`containers/ferry-tasks.json`),
/// and a test keeps that copy equal to this, so neither side can drift.
/// `root` is the whole CLI (its global flags apply to `task` too).
pub fn task_contract(root: &clap::Command) -> Value {
    let task = root
        .find_subcommand("task")
        .expect("the CLI has a task subcommand");
    let lambda = root
        .find_subcommand("lambda")
        .expect("the CLI has a lambda subcommand");
    let mut steps = serde_json::Map::new();
    for step in Step::TASKS {
        let (flag, placeholder) = if step == Step::CreateJob {
            ("--event", "<EventBridge S3 Object Created event, JSON>")
        } else {
            ("--job-id", "<job id>")
        };
        steps.insert(
            step.name().to_string(),
            json!({
                "summary": step.summary(),
                "command": ["task", step.name(), flag, placeholder],
                "outputs": steps::output_fields(step),
            }),
        );
    }
    let mut environment = serde_json::Map::new();
    for arg in root
        .get_arguments()
        .chain(task.get_arguments())
        .chain(lambda.get_arguments())
    {
        if let Some(env) = arg.get_env() {
            environment.insert(
                env.to_string_lossy().into_owned(),
                json!({
                    "flag": format!("--{}", arg.get_long().unwrap_or_default()),
                    "help": arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
                }),
            );
        }
    }
    json!({
        "schema": "ferry.tasks.v2",
        "entrypoint": "ferry",
        "workflows": {
            "loader": Step::LOADER,
            "converter": Step::CONVERTER,
        },
        "steps": steps,
        "environment": environment,
        "job_store": {
            "partition_key": ferry_connectors::jobs::dynamodb::PARTITION_KEY,
            "status_index": {
                "name": ferry_connectors::jobs::dynamodb::STATUS_INDEX,
                "partition_key": ferry_connectors::jobs::dynamodb::STATUS_KEY,
                "sort_key": ferry_connectors::jobs::dynamodb::CREATED_KEY,
            },
        },
        // The notify that ends a job a Catch caught: the job id and the
        // caught error's name (its cause may be 32 KiB: it stays in the state).
        "notify_failure": {
            "command": ["task", Step::Notify.name(), "--job-id", "<job id>", "--caught", "<error name>"],
        },
        // The Lambda fast path: the same binary, one whole job per invocation,
        // whose payload is the event create-job would take.
        "lambda": {
            "command": ["lambda"],
            "payload": "EventBridge S3 Object Created event, JSON",
        },
        "database_environment": ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE", "PGSSLROOTCERT"],
        // From the error table: the names of every class ferry's errors fall into.
        "errors": {
            "retryable": error_names(true),
            "not_retryable": error_names(false),
        },
    })
}

/// [`task_contract`] as the pretty JSON that is checked in.
pub fn task_contract_json(root: &clap::Command) -> String {
    serde_json::to_string_pretty(&task_contract(root)).expect("JSON values serialise")
}

/// The error names of the classes that are (or are not) retryable, in the
/// table's order, each once.
fn error_names(retryable: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for class in Class::PRODUCED.iter().filter(|c| c.retryable == retryable) {
        if !names.contains(&class.name()) {
            names.push(class.name());
        }
    }
    names
}
