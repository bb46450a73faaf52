//! Shared helpers for tests that talk to a real PostgreSQL (started by
//! `scripts/test`, which sets FERRY_TEST_DATABASE_URL). There are no mocks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_connectors::pg::PgConfig;
use tokio_postgres::Client;

/// The test database URL; a clear failure (never a silent skip) without one.
pub fn database_url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| {
            panic!("these tests need PostgreSQL: run scripts/test (it starts one), or set FERRY_TEST_DATABASE_URL")
        })
}

/// Connection settings for the library API.
pub fn pg_config() -> PgConfig {
    PgConfig::from_url_or_env(Some(&database_url()))
        .expect("FERRY_TEST_DATABASE_URL is not a valid URL")
}

/// A plain client for assertions.
pub async fn client() -> Client {
    pg_config()
        .connect()
        .await
        .expect("connecting to the test database")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh schema and temp folder for one test, so tests run in parallel.
pub struct Scratch {
    /// Schema name (already created).
    pub schema: String,
    /// Temporary folder (work dir, inputs, specs).
    pub dir: tempfile::TempDir,
    /// A client.
    pub db: Client,
}

impl Scratch {
    /// Creates schema `t_<name>_<pid>_<n>`.
    pub async fn new(name: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let schema = format!("t_{name}_{}_{n}", std::process::id());
        let db = client().await;
        db.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .expect("creating the test schema");
        Scratch {
            schema,
            dir: tempfile::tempdir().expect("temp dir"),
            db,
        }
    }

    /// `schema.table`
    pub fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.schema)
    }

    /// A path in the temp folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a spec folder and returns it.
    pub fn spec(&self, name: &str, toml: &str, sql: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dataset.toml"), toml).unwrap();
        std::fs::write(dir.join("transform.sql"), sql).unwrap();
        dir
    }

    /// One scalar from a query.
    pub async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.db
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", ferry_connectors::pg::error::describe(&e)))
            .get(0)
    }

    /// Rows of `a` not in `b` plus rows of `b` not in `a`, compared by their
    /// text form (which tells NaN, -0 and every type apart).
    pub async fn diff(&self, a: &str, b: &str) -> Vec<String> {
        let sql = format!(
            "(SELECT 'missing from {b}: ' || t::text FROM {a} t EXCEPT ALL SELECT 'missing from {b}: ' || t::text FROM {b} t)
             UNION ALL
             (SELECT 'unexpected in {b}: ' || t::text FROM {b} t EXCEPT ALL SELECT 'unexpected in {b}: ' || t::text FROM {a} t)"
        );
        self.db
            .query(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{}", ferry_connectors::pg::error::describe(&e)))
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// Runs psql with ON_ERROR_STOP on a file.
pub fn psql_file(file: &Path) -> Output {
    Command::new("psql")
        .arg(database_url())
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file)
        .output()
        .expect("psql must be installed (scripts/pg.sh installs it)")
}

/// Runs psql with a command.
pub fn psql_cmd(cmd: &str) -> Output {
    Command::new("psql")
        .arg(database_url())
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", cmd])
        .output()
        .expect("psql must be installed")
}

/// `ferry run` of `in/a.csv` with the specs in `specs/` and the job folders,
/// job store and events in `work/` (relative to the test's folder).
pub const RUN_IN_A: [&str; 7] = [
    "run",
    "--input",
    "in/a.csv",
    "--specs",
    "specs",
    "--work-dir",
    "work",
];

/// Runs the `ferry` binary against the test database.
pub fn ferry(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(cwd)
        .env("DATABASE_URL", database_url())
        .env("FERRY_LOG_FORMAT", "text")
        .env_remove("FERRY_WORK_DIR")
        .output()
        .expect("running ferry")
}

/// stdout + stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The repository root (for the shipped specs). Read from the environment
/// `cargo test` sets at run time first: a test binary reused from a shared
/// target dir may have been compiled in another checkout.
pub fn repo() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().unwrap().to_path_buf()
}
