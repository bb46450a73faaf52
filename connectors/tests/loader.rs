//! The loader against a real PostgreSQL: every load mode with one and with
//! several COPY streams, the ledger, and injected failures (a constraint
//! violation on one row, the backend terminated mid-COPY) that must leave the
//! target exactly as it was.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use ferry_connectors::pg::catalog::describe_table;
use ferry_connectors::pg::load::{
    Begin, CopyChunk, InputIdentity, LoadRequest, LoadSession, Outcome, OutputColumn,
};
use ferry_connectors::pg::receipt::{Digest, Verify, VerifyPolicy};
use ferry_connectors::pg::{
    BinaryEncoder, LoadMode, PgConfig, PgError, PgType, QualifiedName, SchemaChange,
};
use ferry_connectors::store::Checksum;
use tokio_postgres::Client;

fn url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| {
            panic!("these tests need PostgreSQL: run scripts/test, or set FERRY_TEST_DATABASE_URL")
        })
}

fn cfg() -> PgConfig {
    PgConfig::from_url_or_env(Some(&url())).unwrap()
}

async fn db() -> Client {
    cfg().connect().await.unwrap()
}

async fn schema(db: &Client, name: &str) -> String {
    let s = format!("l_{name}_{}", std::process::id());
    db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}"
    ))
    .await
    .unwrap();
    s
}

fn columns() -> Vec<OutputColumn> {
    vec![
        OutputColumn {
            name: "id".into(),
            data_type: DataType::Int64,
            nullable: false,
            pg: PgType::Int8,
            declared: false,
        },
        OutputColumn {
            name: "v".into(),
            data_type: DataType::Int32,
            nullable: true,
            pg: PgType::Int4,
            declared: false,
        },
        OutputColumn {
            name: "note".into(),
            data_type: DataType::Utf8,
            nullable: true,
            pg: PgType::Text,
            declared: false,
        },
    ]
}

/// Rows `from..to`, with `v = id % 100` except `bad` rows get v = 5000.
fn batch(from: i64, to: i64, bad: Option<i64>) -> RecordBatch {
    let ids: Vec<i64> = (from..to).collect();
    let v: Vec<i32> = ids
        .iter()
        .map(|i| {
            if Some(*i) == bad {
                5000
            } else {
                (i % 100) as i32
            }
        })
        .collect();
    let notes: Vec<String> = ids.iter().map(|i| format!("row {i} ✓")).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int32, true),
        Field::new("note", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(Int32Array::from(v)),
        Arc::new(StringArray::from(notes)),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn request(table: &QualifiedName, mode: LoadMode, streams: usize, input: &str) -> LoadRequest {
    LoadRequest {
        verify: VerifyPolicy::default(),
        target: table.clone(),
        mode,
        keys: if mode.keyed() {
            vec!["id".into()]
        } else {
            vec![]
        },
        streams,
        create: true,
        force: false,
        input: InputIdentity {
            input: input.into(),
            checksum: Checksum::known(format!("sum-of-{input}")),
            bytes: 1,
        },
        dataset: "test".into(),
        job_id: uuid_like(&tag(&table.schema)),
        columns: columns(),
        drift: Default::default(),
        format: Default::default(),
    }
}

/// Job ids whose last 12 characters (which name staging tables) start with
/// the test's schema tag, so a test only inspects its own staging tables.
fn uuid_like(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "0190f3c2-7b1e-7c3a-9f00-{tag}{:08}",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A 4-letter tag derived from a schema name.
fn tag(schema: &str) -> String {
    let h = schema
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    (0..4)
        .map(|i| (b'a' + ((h >> (i * 5)) % 26) as u8) as char)
        .collect()
}

/// Sends rows in chunks of 250, returns the total.
async fn send(session: &LoadSession, batches: &[RecordBatch]) -> u64 {
    let enc = BinaryEncoder::new(session.codecs());
    let tx = session.sender();
    let mut first = 0u64;
    for b in batches {
        for off in (0..b.num_rows()).step_by(250) {
            let part = b.slice(off, 250.min(b.num_rows() - off));
            let mut out = Vec::new();
            enc.encode(&part, &mut out).unwrap();
            let rows = part.num_rows() as u64;
            if tx
                .send(CopyChunk {
                    bytes: Bytes::from(out),
                    rows,
                    first_row: first,
                })
                .await
                .is_err()
            {
                return first;
            }
            first += rows;
        }
    }
    first
}

/// The digest of what [`send`] sends, as the engine computes it while
/// encoding (here over the same chunks again).
fn digest_of(session: &LoadSession, batches: &[RecordBatch]) -> Option<Digest> {
    let digester = session.digester()?;
    let enc = BinaryEncoder::new(session.codecs());
    let mut total = Digest::default();
    for b in batches {
        for off in (0..b.num_rows()).step_by(250) {
            let part = b.slice(off, 250.min(b.num_rows() - off));
            let mut out = Vec::new();
            enc.encode(&part, &mut out).unwrap();
            total.merge(&digester.digest(&part, &out).unwrap());
        }
    }
    Some(total)
}

async fn load(req: LoadRequest, batches: &[RecordBatch]) -> Result<Outcome, PgError> {
    match LoadSession::begin(&cfg(), req).await? {
        Begin::AlreadyLoaded(p) => Ok(Outcome::AlreadyLoaded(p)),
        Begin::Ready(s) => {
            let digest = digest_of(&s, batches);
            let n = send(&s, batches).await;
            s.finish(n, digest).await
        }
    }
}

/// A loaded outcome's figures, after checking it carries a full receipt
/// of `rows` rows.
fn proven(out: Outcome) -> (u64, bool, Vec<SchemaChange>, u64) {
    let Outcome::Loaded {
        rows,
        created,
        schema_changes,
        duplicates,
        receipt,
    } = out
    else {
        panic!("not loaded: {out:?}")
    };
    let receipt = receipt.expect("a receipt");
    assert_eq!(
        (receipt.verify, receipt.rows),
        (Verify::Full, rows - duplicates)
    );
    (rows, created, schema_changes, duplicates)
}

/// The table's content, as one sorted text value (for exact comparisons).
async fn snapshot(db: &Client, table: &QualifiedName) -> String {
    db.query_one(
        &format!(
            "SELECT coalesce(string_agg(t::text, ';' ORDER BY t::text), '') FROM {} t",
            table.quoted()
        ),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

async fn leftovers(db: &Client, schema: &str) -> Vec<String> {
    db.query(
        "SELECT schemaname || '.' || tablename FROM pg_tables
          WHERE (schemaname = 'ferry' AND tablename LIKE 'stage\\_' || $2 || '%') OR (schemaname = $1 AND tablename LIKE '%\\_\\_ferry\\_%')",
        &[&schema, &tag(schema)],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn prepare_target(db: &Client, table: &QualifiedName) {
    db.batch_execute(&format!(
        "CREATE TABLE {t} (id bigint PRIMARY KEY, v integer CHECK (v < 1000), note text);
         INSERT INTO {t} SELECT g, g % 7, 'before' FROM generate_series(1, 50) g;",
        t = table.quoted()
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mode_publishes_the_right_rows() {
    let db = db().await;
    let s = schema(&db, "modes").await;
    for streams in [1, 3] {
        for mode in [
            LoadMode::Append,
            LoadMode::Replace,
            LoadMode::Upsert,
            LoadMode::DeleteInsert,
        ] {
            let table = QualifiedName::new(&s, format!("{mode}_{streams}"));
            prepare_target(&db, &table).await;
            // Upsert and delete-insert get ids 41..1041: 10 overlap the
            // existing 1..50 and replace them.
            let first = if mode.keyed() { 41 } else { 51 };
            let out = load(
                request(&table, mode, streams, &format!("{table}.csv")),
                &[batch(first, first + 1000, None)],
            )
            .await
            .unwrap();
            assert_eq!(proven(out), (1000, false, vec![], 0), "{mode} x{streams}");
            let count: i64 = db
                .query_one(&format!("SELECT count(*) FROM {}", table.quoted()), &[])
                .await
                .unwrap()
                .get(0);
            let before: i64 = db
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {} WHERE note = 'before'",
                        table.quoted()
                    ),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            let expected = match mode {
                LoadMode::Append => (1050, 50),
                LoadMode::Replace => (1000, 0),
                LoadMode::Upsert | LoadMode::DeleteInsert => (1040, 40),
            };
            assert_eq!((count, before), expected, "{mode} x{streams}");
            // A replaced table keeps its constraints and primary key.
            let checks: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype IN ('c','p')",
                    &[&table.quoted()],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(checks, 2, "{mode} x{streams}");
            assert!(
                leftovers(&db, &s).await.is_empty(),
                "{mode} x{streams}: {:?}",
                leftovers(&db, &s).await
            );
        }
    }
    // A missing target is created (with a primary key for upsert).
    let table = QualifiedName::new(&s, "created");
    let out = load(
        request(&table, LoadMode::Upsert, 2, "new.csv"),
        &[batch(1, 101, None)],
    )
    .await
    .unwrap();
    assert_eq!(proven(out), (100, true, vec![], 0));
    let pk: i64 = db
        .query_one("SELECT count(*) FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype = 'p'", &[&table.quoted()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_constraint_violation_on_one_row_leaves_the_target_unchanged() {
    let db = db().await;
    let s = schema(&db, "violation").await;
    for streams in [1, 3] {
        for mode in [LoadMode::Append, LoadMode::Replace, LoadMode::Upsert] {
            let table = QualifiedName::new(&s, format!("{mode}_{streams}"));
            prepare_target(&db, &table).await;
            let before = snapshot(&db, &table).await;
            let err = load(
                request(&table, mode, streams, "bad.csv"),
                &[batch(100, 1100, Some(777))],
            )
            .await
            .unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("check constraint"), "{mode} x{streams}: {msg}");
            // Rows are named where PostgreSQL names them: the COPY line, or the failing row's values.
            assert!(
                msg.contains("output row 678") || msg.contains("5000"),
                "{mode} x{streams}: {msg}"
            );
            assert!(!err.is_retryable(), "{mode} x{streams}");
            assert_eq!(
                snapshot(&db, &table).await,
                before,
                "{mode} x{streams}: the target changed"
            );
            assert!(leftovers(&db, &s).await.is_empty(), "{mode} x{streams}");
            // Fixed input loads (the failed attempt left no ledger entry).
            let out = load(
                request(&table, mode, streams, "bad.csv"),
                &[batch(100, 1100, None)],
            )
            .await
            .unwrap();
            assert!(
                matches!(out, Outcome::Loaded { rows: 1000, .. }),
                "{mode} x{streams}: {out:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_terminated_during_copy_leaves_the_target_unchanged() {
    let db = db().await;
    let s = schema(&db, "terminate").await;
    for streams in [1, 3] {
        for mode in [LoadMode::Append, LoadMode::Replace, LoadMode::Upsert] {
            let table = QualifiedName::new(&s, format!("{mode}_{streams}"));
            prepare_target(&db, &table).await;
            let before = snapshot(&db, &table).await;
            let req = request(&table, mode, streams, "killed.csv");
            let app = format!("ferry {}", &req.job_id[req.job_id.len() - 12..]);
            let Begin::Ready(session) = LoadSession::begin(&cfg(), req).await.unwrap() else {
                panic!()
            };
            let sent = send(&session, &[batch(100, 600, None)]).await;
            // Wait until a COPY is running, kill its backend, and wait until
            // the backend is gone (pg_terminate_backend only sends a signal).
            let mut killed = None;
            for _ in 0..500 {
                let rows = db
                    .query(
                        "WITH copying AS MATERIALIZED (
                           SELECT pid, state, left(query, 60) AS query FROM pg_stat_activity
                            WHERE application_name = $1 AND query LIKE 'COPY%' LIMIT 1)
                         SELECT pid, state, query FROM copying WHERE pg_terminate_backend(pid)",
                        &[&app],
                    )
                    .await
                    .unwrap();
                if let Some(r) = rows.first() {
                    killed = Some((
                        r.get::<_, i32>(0),
                        r.get::<_, Option<String>>(1),
                        r.get::<_, String>(2),
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let Some(killed) = killed else {
                panic!("{mode} x{streams}: no COPY backend to terminate")
            };
            for _ in 0..500 {
                let alive: i64 = db
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                        &[&killed.0],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if alive == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let more = send(&session, &[batch(600, 1100, None)]).await;
            let out = session.finish(sent + more, None).await;
            let Err(err) = out else {
                panic!("{mode} x{streams}: loaded after terminating {killed:?}: {out:?}")
            };
            assert!(
                err.is_retryable(),
                "{mode} x{streams}: a terminated backend should be retryable: {err}"
            );
            assert_eq!(
                snapshot(&db, &table).await,
                before,
                "{mode} x{streams}: the target changed"
            );
            // Staging tables are dropped (possibly by a fresh connection).
            for _ in 0..50 {
                if leftovers(&db, &s).await.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                leftovers(&db, &s).await.is_empty(),
                "{mode} x{streams}: {:?}",
                leftovers(&db, &s).await
            );
            // The retry succeeds and loads exactly once.
            let out = load(
                request(&table, mode, streams, "killed.csv"),
                &[batch(100, 1100, None)],
            )
            .await
            .unwrap();
            assert!(
                matches!(out, Outcome::Loaded { rows: 1000, .. }),
                "{mode} x{streams}: {out:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_input_loads_once_unless_forced() {
    let db = db().await;
    let s = schema(&db, "ledger").await;
    let table = QualifiedName::new(&s, "t");
    let rows = [batch(1, 301, None)];
    assert!(matches!(
        load(request(&table, LoadMode::Append, 2, "a.csv"), &rows)
            .await
            .unwrap(),
        Outcome::Loaded { rows: 300, .. }
    ));
    let again = load(request(&table, LoadMode::Append, 2, "a.csv"), &rows)
        .await
        .unwrap();
    let Outcome::AlreadyLoaded(prev) = again else {
        panic!("loaded twice: {again:?}")
    };
    assert_eq!(prev.rows, 300);
    let mut forced = request(&table, LoadMode::Append, 2, "a.csv");
    forced.force = true;
    assert!(matches!(
        load(forced, &rows).await.unwrap(),
        Outcome::Loaded { rows: 300, .. }
    ));
    let count: i64 = db
        .query_one(&format!("SELECT count(*) FROM {}", table.quoted()), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 600);
    let loads: i32 = db
        .query_one(
            "SELECT loads FROM ferry.loads WHERE target = $1 AND input = 'a.csv'",
            &[&table.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(loads, 2);
    // A changed file (other checksum) under the same name is a new input.
    let mut changed = request(&table, LoadMode::Append, 1, "a.csv");
    changed.input.checksum = Checksum::known("another");
    assert!(matches!(
        load(changed, &rows).await.unwrap(),
        Outcome::Loaded { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_duplicate_loads_publish_once() {
    let db = db().await;
    let s = schema(&db, "race").await;
    let table = QualifiedName::new(&s, "t");
    db.batch_execute(&format!(
        "CREATE TABLE {} (id bigint, v integer, note text)",
        table.quoted()
    ))
    .await
    .unwrap();
    let mut handles = Vec::new();
    for streams in [1, 2, 1, 3] {
        let req = request(&table, LoadMode::Append, streams, "dup.csv");
        handles.push(tokio::spawn(async move {
            load(req, &[batch(1, 501, None)]).await
        }));
    }
    let mut loaded = 0;
    for h in handles {
        match h.await.unwrap().unwrap() {
            Outcome::Loaded { .. } => loaded += 1,
            Outcome::AlreadyLoaded(_) => {}
        }
    }
    assert_eq!(loaded, 1);
    let count: i64 = db
        .query_one(&format!("SELECT count(*) FROM {}", table.quoted()), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 500);
    let left = leftovers(&db, &s).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mismatched_targets_are_refused_before_any_row() {
    let db = db().await;
    let s = schema(&db, "mismatch").await;
    let table = QualifiedName::new(&s, "t");
    db.batch_execute(&format!(
        "CREATE TABLE {} (id bigint, v date, note text, must integer NOT NULL)",
        table.quoted()
    ))
    .await
    .unwrap();
    let err = LoadSession::begin(&cfg(), request(&table, LoadMode::Append, 1, "x"))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("cannot load Arrow Int32 into PostgreSQL date"),
        "{err}"
    );
    db.batch_execute(&format!(
        "ALTER TABLE {} ALTER v TYPE integer USING NULL",
        table.quoted()
    ))
    .await
    .unwrap();
    let err = LoadSession::begin(&cfg(), request(&table, LoadMode::Append, 1, "x"))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("\"must\"") && err.to_string().contains("NOT NULL"),
        "{err}"
    );
    db.batch_execute(&format!("ALTER TABLE {} DROP must", table.quoted()))
        .await
        .unwrap();
    let err = LoadSession::begin(&cfg(), request(&table, LoadMode::Upsert, 1, "x"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("unique index"), "{err}");
    // An Int64 into a numeric column is encoded as numeric, from the target's type.
    db.batch_execute(&format!(
        "ALTER TABLE {} ALTER id TYPE numeric(30,2)",
        table.quoted()
    ))
    .await
    .unwrap();
    let out = load(
        request(&table, LoadMode::Append, 1, "numeric.csv"),
        &[batch(1, 11, None)],
    )
    .await
    .unwrap();
    assert!(matches!(out, Outcome::Loaded { rows: 10, .. }));
    let sum: String = db
        .query_one(
            &format!("SELECT sum(id)::text FROM {}", table.quoted()),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, "55.00");
}

/// A target another job creates while this one reads the catalog is seen
/// either missing or whole, never as a table without columns: the split
/// Loader's concurrent first loads into a new table failed that way ("has no
/// column(s) … (it has [])") when the commit fell between two catalog reads.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_created_while_it_is_described_is_seen_missing_or_whole() {
    let db = db().await;
    let s = schema(&db, "describe_race").await;
    let tables: Vec<QualifiedName> = (0..60)
        .map(|i| QualifiedName::new(&s, format!("t{i}")))
        .collect();
    let reader = cfg().connect().await.unwrap();
    let watched = tables.clone();
    let watcher = tokio::spawn(async move {
        let mut polls = 0u64;
        for t in &watched {
            loop {
                polls += 1;
                match describe_table(&reader, t).await.unwrap() {
                    None => tokio::task::yield_now().await,
                    Some(cols) => {
                        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
                        assert_eq!(names, ["id", "note"], "{t} after {polls} polls");
                        break;
                    }
                }
            }
        }
        polls
    });
    for t in &tables {
        // Let the watcher poll the missing table a few times first.
        tokio::time::sleep(Duration::from_millis(3)).await;
        db.batch_execute(&format!(
            "CREATE TABLE {} (id bigint, note text)",
            t.quoted()
        ))
        .await
        .unwrap();
    }
    let polls = watcher.await.unwrap();
    assert!(
        polls > tables.len() as u64,
        "the watcher saw missing tables: {polls} polls"
    );
    // A table that really has no columns is found, and found empty.
    let bare = QualifiedName::new(&s, "bare");
    db.batch_execute(&format!("CREATE TABLE {} ()", bare.quoted()))
        .await
        .unwrap();
    assert_eq!(describe_table(&db, &bare).await.unwrap(), Some(Vec::new()));
}

/// Hashing an input reads all of it, so a load of an input the ledger has
/// never seen starts without the checksum and waits for it only to record
/// it at commit; a second load of that input then waits for its checksum
/// before anything else, and is skipped.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_input_loads_while_its_checksum_is_computed() {
    let db = db().await;
    let s = schema(&db, "pending_sum").await;
    let table = QualifiedName::new(&s, "t");
    let dir = tempfile::tempdir().unwrap();
    // A FIFO: its checksum cannot finish before the test writes the bytes.
    let fifo = dir.path().join("input.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = b"the input's bytes, arriving late".to_vec();
    let plain = dir.path().join("input.plain");
    std::fs::write(&plain, &bytes).unwrap();
    let expected = ferry_connectors::store::checksum_file(&plain).unwrap();

    let mut req = request(&table, LoadMode::Append, 1, "late.csv");
    req.input.checksum = Checksum::of_file(fifo.clone(), "late.csv".into());
    let begun = match tokio::time::timeout(
        Duration::from_secs(20),
        LoadSession::begin(&cfg(), req.clone()),
    )
    .await
    {
        Ok(begun) => begun.unwrap(),
        Err(_) => {
            // Release the hashing thread, so the runtime can shut down.
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, b""));
            panic!("begin waited for the checksum of a new input");
        }
    };
    let Begin::Ready(session) = begun else {
        panic!("a new input was taken for a duplicate");
    };
    let rows = send(&session, &[batch(1, 301, None)]).await;
    let writer = std::thread::spawn(move || std::fs::write(&fifo, &bytes).unwrap());
    match session.finish(rows, None).await.unwrap() {
        Outcome::Loaded { rows, .. } => assert_eq!(rows, 300),
        other => panic!("{other:?}"),
    }
    writer.join().unwrap();
    let recorded: String = db
        .query_one(
            "SELECT checksum FROM ferry.loads WHERE target = $1 AND input = 'late.csv'",
            &[&table.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, expected);

    // The ledger knows the input now: the same bytes are a duplicate.
    let mut again = request(&table, LoadMode::Append, 1, "late.csv");
    again.input.checksum = Checksum::of_file(plain, "late.csv".into());
    match load(again, &[batch(1, 301, None)]).await.unwrap() {
        Outcome::AlreadyLoaded(prev) => assert_eq!(prev.rows, 300),
        other => panic!("{other:?}"),
    }
}

/// A pooled connection prepares a load's fixed statements (the ledger, the
/// catalog, the receipt) once and keeps them for the jobs after: with one
/// connection and five loads, each is prepared on the server exactly once,
/// and what the connection keeps does not grow with the number of jobs.
#[tokio::test]
async fn pooled_loads_prepare_their_fixed_statements_once() {
    let db = db().await;
    let s = schema(&db, "prepared").await;
    let table = QualifiedName::new(&s, "t");
    let pooled = cfg().with_pool(1);
    let rows = [batch(1, 51, None)];
    let load_on = |input: &'static str| {
        let pooled = pooled.clone();
        let req = request(&table, LoadMode::Append, 1, input);
        let rows = rows.clone();
        async move {
            let Begin::Ready(session) = LoadSession::begin(&pooled, req).await.unwrap() else {
                panic!("{input} was loaded before")
            };
            let digest = digest_of(&session, &rows);
            let n = send(&session, &rows).await;
            session.finish(n, digest).await.unwrap()
        }
    };
    let kept = |pooled: PgConfig| async move {
        let conn = pooled.checkout(1).await.unwrap().pop().unwrap();
        let statements: Vec<String> = conn
            .query("SELECT statement FROM pg_prepared_statements", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let pid: i32 = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let mut conn = conn;
        conn.keep();
        (pid, statements)
    };
    for input in ["p1.csv", "p2.csv"] {
        proven(load_on(input).await);
    }
    let (pid, after_two) = kept(pooled.clone()).await;
    for input in ["p3.csv", "p4.csv", "p5.csv"] {
        proven(load_on(input).await);
    }
    let (same_pid, after_five) = kept(pooled.clone()).await;
    assert_eq!(pid, same_pid, "the pool did not keep its one connection");
    for fixed in [
        "FROM pg_class c",
        "SELECT 1 FROM ferry.loads WHERE target = $1",
        "INSERT INTO ferry.loads",
        "pg_relation_size($1::text::regclass)",
        "SELECT xid(pg_current_xact_id())::text",
        "current_setting('server_version')",
    ] {
        let n = after_five.iter().filter(|s| s.contains(fixed)).count();
        assert_eq!(n, 1, "{fixed:?} prepared {n} times: {after_five:#?}");
    }
    assert_eq!(
        after_two.len(),
        after_five.len(),
        "the statements kept grew with the jobs: {after_two:#?} then {after_five:#?}"
    );
}
