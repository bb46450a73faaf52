//! The load receipt against tables that silently change what they store:
//! each change is caught (exit 6, nothing published, the column named) and
//! each passes once the spec says it is wanted (`[target.verify_except]`),
//! with the exception recorded in the receipt.

use crate::common::{self, Scratch, ferry, text};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Loads `csv` into `table` with a spec whose `[target]` has `extra` lines.
fn load(s: &Scratch, csv: &str, table: &str, extra: &str, args: &[&str]) -> std::process::Output {
    let n = s.dir.path().read_dir().unwrap().count();
    let input = s.path(&format!("in{n}.csv"));
    std::fs::write(&input, csv).unwrap();
    let spec = s.spec(
        &format!("spec{n}"),
        &format!("[source]\nformat = \"csv\"\n[target]\ntable = \"{table}\"\n{extra}"),
        "SELECT * FROM source",
    );
    let mut all = vec![
        "load",
        "--dataset",
        spec.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--json",
    ];
    all.extend_from_slice(args);
    ferry(&all, s.dir.path())
}

/// Asserts `o` failed with exit 6 naming `column`, and that `table` and the
/// ledger still hold only what they held (`rows` rows, no entry).
async fn refused(s: &Scratch, o: &std::process::Output, table: &str, column: &str, rows: i64) {
    assert_eq!(code(o), 6, "{}", text(o));
    assert!(
        text(o).contains(&format!("column \"{column}\"")),
        "the error should name {column}: {}",
        text(o)
    );
    assert!(text(o).contains("nothing was published"), "{}", text(o));
    let held: i64 = s.scalar(&format!("SELECT count(*) FROM {table}")).await;
    assert_eq!(held, rows, "a refused load changed {table}");
    let entries: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM ferry.loads WHERE target = '{table}'"
        ))
        .await;
    assert_eq!(entries, 0, "a refused load was recorded in the ledger");
}

/// The receipt of a successful `--json` load.
fn receipt(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(o), 0, "{}", text(o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let receipt = report["receipt"].clone();
    assert_eq!(receipt["verify"], "full", "{report}");
    let on_disk: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(report["job_dir"].as_str().unwrap()).join("receipt.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk, receipt, "receipt.json differs from the report's");
    receipt
}

fn column<'a>(receipt: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    receipt["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name} in {receipt}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rounding_numeric_column_is_caught_and_passes_when_wanted() {
    let s = Scratch::new("rcpt_round").await;
    let t = s.table("amounts");
    s.db.batch_execute(&format!(
        "CREATE TABLE {t} (id int PRIMARY KEY, amount numeric(15,2)); INSERT INTO {t} VALUES (0, 9.99)"
    ))
    .await
    .unwrap();
    let csv = "id,amount\n1,1.234\n2,2.5\n3,-0.005\n";
    // One stream into the table, two through a staging table (rows stored
    // in whatever order the streams arrived) and an upsert: refused, and
    // the earliest changed row and both values named each time.
    for args in [
        &["--streams", "1"][..],
        &["--streams", "2"],
        &["--mode", "upsert", "--key", "id"],
    ] {
        let o = load(&s, csv, &t, "", args);
        refused(&s, &o, &t, "amount", 1).await;
        assert!(text(&o).contains("amount = \"rounding\""), "{}", text(&o));
        assert!(
            text(&o).contains(
                "first at row 1 of the rows loaded: ferry sent 1.234, PostgreSQL stored 1.23"
            ),
            "{args:?}: {}",
            text(&o)
        );
    }
    let o = load(
        &s,
        csv,
        &t,
        "[target.verify_except]\namount = \"rounding\"\n",
        &[],
    );
    let r = receipt(&o);
    assert_eq!(column(&r, "amount")["except"], "rounding", "{r}");
    let stored: String = s
        .scalar(&format!(
            "SELECT string_agg(amount::text, ',' ORDER BY id) FROM {t}"
        ))
        .await;
    assert_eq!(stored, "9.99,1.23,2.50,-0.01");
    // The ledger keeps the same receipt.
    let kept: String = s
        .scalar(&format!(
            "SELECT receipt::text FROM ferry.loads WHERE target = '{t}'"
        ))
        .await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&kept).unwrap(), r);
    // verify = count proves the rows only, and lets the rounding through.
    let o = load(&s, "id,amount\n4,4.444\n", &t, "", &["--verify", "count"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_padding_char_column_is_caught_and_passes_when_wanted() {
    let s = Scratch::new("rcpt_pad").await;
    let t = s.table("codes");
    s.db.batch_execute(&format!("CREATE TABLE {t} (id int, code character(5))"))
        .await
        .unwrap();
    let csv = "id,code\n1,ab\n2,abcde\n3,\n";
    let o = load(&s, csv, &t, "", &[]);
    refused(&s, &o, &t, "code", 0).await;
    assert!(text(&o).contains("code = \"padding\""), "{}", text(&o));
    let o = load(
        &s,
        csv,
        &t,
        "[target.verify_except]\ncode = \"padding\"\n",
        &[],
    );
    assert_eq!(column(&receipt(&o), "code")["except"], "padding");
    // Values that fill the column need no exception.
    let o = load(&s, "id,code\n4,vwxyz\n", &t, "", &[]);
    receipt(&o);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_column_fed_doubles_is_caught_and_passes_when_wanted() {
    let s = Scratch::new("rcpt_real").await;
    let t = s.table("ratios");
    s.db.batch_execute(&format!("CREATE TABLE {t} (id int, ratio real)"))
        .await
        .unwrap();
    let csv = "id,ratio\n1,0.1\n2,0.5\n";
    let o = load(&s, csv, &t, "", &[]);
    refused(&s, &o, &t, "ratio", 0).await;
    assert!(text(&o).contains("ratio = \"precision\""), "{}", text(&o));
    let o = load(
        &s,
        csv,
        &t,
        "[target.verify_except]\nratio = \"precision\"\n",
        &[],
    );
    assert_eq!(column(&receipt(&o), "ratio")["except"], "precision");
    // Doubles a real holds exactly need no exception.
    let o = load(&s, "id,ratio\n3,0.25\n4,-2\n", &t, "", &[]);
    receipt(&o);
    // load.sql checks the same receipt: replayed into a table that now
    // rewrites a value, psql stops and nothing is published.
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let driver =
        std::path::Path::new(report["job_dir"].as_str().unwrap()).join("artifacts/load.sql");
    s.db.batch_execute(&format!(
        "DELETE FROM {t} WHERE id IN (3, 4); DELETE FROM ferry.loads WHERE job_id = '{job}';
         CREATE FUNCTION {schema}.halve() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id = 4 THEN NEW.ratio := NEW.ratio / 2; END IF; RETURN NEW; END $$;
         CREATE TRIGGER halve BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {schema}.halve()",
        job = report["job_id"].as_str().unwrap(),
        schema = s.schema
    ))
    .await
    .unwrap();
    let before: i64 = s.scalar(&format!("SELECT count(*) FROM {t}")).await;
    let replay = common::psql_file(&driver);
    assert!(!replay.status.success(), "{}", text(&replay));
    assert!(
        text(&replay).contains("ferry: the receipt does not match"),
        "{}",
        text(&replay)
    );
    let after: i64 = s.scalar(&format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(after, before, "a refused replay changed the table");
    // Without the trigger the same replay proves its rows and commits.
    s.db.batch_execute(&format!("DROP TRIGGER halve ON {t}"))
        .await
        .unwrap();
    let replay = common::psql_file(&driver);
    assert!(replay.status.success(), "{}", text(&replay));
    let after: i64 = s.scalar(&format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(after, before + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trigger_changing_one_value_in_a_million_is_caught() {
    let s = Scratch::new("rcpt_trig").await;
    let t = s.table("events");
    s.db.batch_execute(&format!(
        "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint);
         CREATE FUNCTION {schema}.nudge() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id = 654321 THEN NEW.v := NEW.v + 1; END IF; RETURN NEW; END $$;
         CREATE TRIGGER nudge BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {schema}.nudge()",
        schema = s.schema
    ))
    .await
    .unwrap();
    let mut csv = String::with_capacity(16 << 20);
    csv.push_str("id,v\n");
    for i in 1..=1_000_000u64 {
        csv.push_str(&format!("{i},{}\n", i * 7));
    }
    // Appended by COPY (the trigger fires per row), and upserted (the
    // publishing INSERT fires it): both refused, naming v.
    let o = load(&s, &csv, &t, "", &[]);
    refused(&s, &o, &t, "v", 0).await;
    assert!(
        text(&o).contains(
            "first at row 654321 of the rows loaded: ferry sent 4580247, PostgreSQL stored 4580248"
        ),
        "{}",
        text(&o)
    );
    // The publishing INSERT returns rows in no particular order: the row is
    // found by its other columns all the same, and so it is with two
    // streams through a staging table.
    for args in [
        &["--mode", "upsert", "--key", "id"][..],
        &["--streams", "2"],
    ] {
        let o = load(&s, &csv, &t, "", args);
        refused(&s, &o, &t, "v", 0).await;
        assert!(
            text(&o).contains(
                "first at row 654321 of the rows loaded: ferry sent 4580247, PostgreSQL stored 4580248"
            ),
            "{args:?}: {}",
            text(&o)
        );
    }
    // A column a trigger owns is left out of the comparison when the spec
    // says so; the receipt says it was not compared.
    let o = load(&s, &csv, &t, "[target.verify_except]\nv = \"any\"\n", &[]);
    let r = receipt(&o);
    assert_eq!(column(&r, "v")["except"], "any", "{r}");
    assert!(column(&r, "v")["unchecked"].is_string(), "{r}");
    let nudged: i64 = s
        .scalar(&format!("SELECT v FROM {t} WHERE id = 654321"))
        .await;
    assert_eq!(nudged, 654321 * 7 + 1);
}

/// `ferry verify` recomputes a loaded table's digests any day after and
/// compares them with its receipt; `ferry jobs show` prints the receipt.
#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_a_table_that_changed_since_its_load() {
    let s = Scratch::new("rcpt_verify").await;
    let t = s.table("prices");
    let csv = "id,price,name\n1,1.5,a\n2,2.25,b\n3,,c\n";
    let o = load(&s, csv, &t, "mode = \"replace\"\n", &[]);
    let r = receipt(&o);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let job = report["job_id"].as_str().unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", t.as_str()];
        args.extend_from_slice(extra);
        ferry(&args, s.dir.path())
    };
    let o = verify(&[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains(&format!("matches the receipt of job {job}")),
        "{}",
        text(&o)
    );
    let shown = ferry(&["jobs", "show", job], s.dir.path());
    assert_eq!(code(&shown), 0, "{}", text(&shown));
    assert!(
        text(&shown).contains("receipt   3 rows and every value"),
        "{}",
        text(&shown)
    );
    assert!(
        text(&shown).contains(column(&r, "price")["digest"].as_str().unwrap()),
        "{}",
        text(&shown)
    );
    // A value changed after the load: verify names its column, exit 6.
    s.db.batch_execute(&format!("UPDATE {t} SET price = 2.26 WHERE id = 2"))
        .await
        .unwrap();
    let o = verify(&["--json"]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    let found: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(found["column"], "price", "{found}");
    // An appended table without lineage cannot tell its load's rows apart.
    let a = s.table("appended");
    let o = load(&s, csv, &a, "", &[]);
    receipt(&o);
    let o = ferry(&["verify", a.as_str()], s.dir.path());
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("_ferry_job_id"), "{}", text(&o));
    // With lineage it can, load by load.
    let l = s.table("lineaged");
    let o = load(&s, csv, &l, "lineage = [\"job_id\"]\n", &[]);
    receipt(&o);
    let o = load(
        &s,
        "id,price,name\n9,9,z\n",
        &l,
        "lineage = [\"job_id\"]\n",
        &[],
    );
    receipt(&o);
    let o = ferry(&["verify", l.as_str()], s.dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o));
}

/// An upsert whose columns are all keys publishes with `DO NOTHING`: a row
/// whose key is there already is not returned by the INSERT, yet it is
/// stored as sent, and the receipt counts it.
#[tokio::test(flavor = "multi_thread")]
async fn an_upsert_of_keys_only_proves_the_rows_already_there() {
    let s = Scratch::new("rcpt_keys").await;
    let t = s.table("tags");
    let keyed = ["--mode", "upsert", "--key", "id", "--key", "tag"];
    let o = load(&s, "id,tag\n1,a\n2,b\n", &t, "", &keyed);
    receipt(&o);
    let o = load(&s, "id,tag\n2,b\n3,c\n", &t, "", &keyed);
    let r = receipt(&o);
    assert_eq!(r["rows"], 2, "{r}");
    let rows: i64 = s.scalar(&format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(rows, 3);
}

/// A small file appended to a large table: the receipt reads the rows from
/// where the table ended (a TID range scan), not the whole table; rows the
/// server put into free space of earlier blocks are still found (the count
/// falls short, and the whole table is read then); a change is still caught.
#[tokio::test(flavor = "multi_thread")]
async fn an_append_to_a_large_table_is_proven_from_its_end() {
    let s = Scratch::new("rcpt_tail").await;
    let t = s.table("big");
    // The first blocks hold only rows of a rolled-back insert: dead to any
    // snapshot, so a VACUUM later frees them whatever else runs. No
    // autovacuum, so that happens only when the test says.
    for sql in [
        format!("CREATE TABLE {t} (id bigint, v text) WITH (autovacuum_enabled = off)"),
        format!(
            "BEGIN; INSERT INTO {t} SELECT i, repeat('x', 40) FROM generate_series(1, 20000) i; ROLLBACK"
        ),
        format!(
            "INSERT INTO {t} SELECT i, repeat('x', 40) FROM generate_series(1, 200000) i; ANALYZE {t}"
        ),
    ] {
        s.db.batch_execute(&sql).await.unwrap();
    }
    let (ins0, read0) = settled_stats(&s, &t, 220_000).await;
    let o = load(&s, "id,v\n1000001,a\n1000002,b\n1000003,c\n", &t, "", &[]);
    assert_eq!(receipt(&o)["rows"], 3);
    // The load's backend reports its counters when it ends: wait for the
    // insert to show, then the scan it did is there too.
    let after = stats_after_insert(&s, &t, ins0).await;
    assert_eq!(after.0, ins0 + 3, "the load's statistics never arrived");
    assert!(
        after.1 - read0 < 200_000,
        "the receipt read the whole table: {} rows",
        after.1 - read0
    );
    // Free space early in the table (the rolled-back rows'): the server
    // puts the next rows there, before where the table ended. They are
    // proven all the same.
    s.db.batch_execute(&format!("VACUUM {t}")).await.unwrap();
    let mut csv = String::from("id,v\n");
    for i in 0..5000 {
        csv.push_str(&format!("{},{}\n", 2_000_000 + i, "y".repeat(40)));
    }
    let o = load(&s, &csv, &t, "", &[]);
    let r = receipt(&o);
    assert_eq!(r["rows"], 5000, "{r}");
    let early: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM {t} WHERE id >= 2000000 AND ctid < '(100,0)'::tid"
        ))
        .await;
    assert!(
        early > 0,
        "the rows went to the end: the fallback was not exercised"
    );
    // And a value changed on the way in is caught from the end, too.
    s.db.batch_execute(&format!(
        "CREATE FUNCTION {schema}.nudge() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id = 3000001 THEN NEW.v := 'z'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER nudge BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {schema}.nudge()",
        schema = s.schema
    ))
    .await
    .unwrap();
    let held: i64 = s.scalar(&format!("SELECT count(*) FROM {t}")).await;
    let o = load(&s, "id,v\n3000000,a\n3000001,b\n", &t, "", &[]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("first at row 2 of the rows loaded: ferry sent b, PostgreSQL stored z"),
        "{}",
        text(&o)
    );
    let now: i64 = s.scalar(&format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(now, held);
}

/// Concurrent appends to one table leave free blocks just before where the
/// table ends (an extension under contention adds up to 512 blocks and
/// lists them as free), and the next append's rows go there: the receipt
/// finds them in that window, without reading the whole table.
#[tokio::test]
async fn rows_in_free_blocks_just_before_the_end_are_proven_without_the_whole_table() {
    let s = Scratch::new("rcpt_recent").await;
    let t = s.table("busy");
    for sql in [
        format!(
            "CREATE TABLE {t} (id bigint, v text) WITH (autovacuum_enabled = off, vacuum_truncate = false)"
        ),
        format!(
            "INSERT INTO {t} SELECT i, repeat('x', 40) FROM generate_series(1, 200000) i; ANALYZE {t}"
        ),
    ] {
        s.db.batch_execute(&sql).await.unwrap();
    }
    let size =
        format!("SELECT pg_relation_size('{t}'::regclass) / current_setting('block_size')::int8");
    let full: i64 = s.scalar(&size).await;
    assert!(full > 600, "{full} blocks: too few for the test");
    // About 180 blocks at the end that only a rolled-back insert wrote: dead
    // to any snapshot, so VACUUM frees them whatever else runs, and keeps
    // them (as another load's extension leaves them, listed as free).
    for sql in [
        format!(
            "BEGIN; INSERT INTO {t} SELECT i, repeat('x', 40) FROM generate_series(1, 20000) i; ROLLBACK"
        ),
        format!("VACUUM {t}"),
    ] {
        s.db.batch_execute(&sql).await.unwrap();
    }
    let blocks: i64 = s.scalar(&size).await;
    assert!(
        blocks > full + 100,
        "{blocks} blocks after the rolled-back insert"
    );
    let (ins0, read0) = settled_stats(&s, &t, 220_000).await;
    let o = load(&s, "id,v\n5000001,a\n5000002,b\n5000003,c\n", &t, "", &[]);
    assert_eq!(receipt(&o)["rows"], 3, "{}", text(&o));
    let before_end: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM {t} WHERE id > 5000000 AND ctid < '({},0)'::tid",
            blocks - 1
        ))
        .await;
    assert!(
        before_end > 0,
        "the rows went to the last block: the window was not exercised"
    );
    let after = stats_after_insert(&s, &t, ins0).await;
    assert_eq!(after.0, ins0 + 3, "the load's statistics never arrived");
    let held: i64 = s.scalar(&format!("SELECT count(*) FROM {t}")).await;
    assert!(
        after.1 - read0 < held,
        "the receipt read the whole table: {} rows of {held}",
        after.1 - read0
    );
}

/// The table's counters before a load, once the setup's `inserted` rows
/// (rolled-back ones count too) show in them. The test's connection stays
/// open, and an idle backend may hold its counters for up to ten seconds;
/// without the wait the load's rows would be mixed into the baseline.
async fn settled_stats(s: &Scratch, t: &str, inserted: i64) -> (i64, i64) {
    s.db.batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    let settled = stats_after_insert(s, t, inserted - 1).await;
    assert_eq!(settled.0, inserted, "the setup's statistics never arrived");
    settled
}

/// The table's counters once the load's insert shows in them: its backend
/// reports them when it ends, so the scan it did is there too.
async fn stats_after_insert(s: &Scratch, t: &str, ins0: i64) -> (i64, i64) {
    let mut after = stats(s, t).await;
    // Longer than PostgreSQL's idle interval for reporting (10 s).
    for _ in 0..150 {
        if after.0 > ins0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = stats(s, t).await;
    }
    after
}

/// The table's inserted-rows and sequentially-read-rows counters.
async fn stats(s: &Scratch, t: &str) -> (i64, i64) {
    let r = s
        .db
        .query_one(
            &format!(
                "SELECT n_tup_ins, seq_tup_read FROM pg_stat_user_tables WHERE relid = '{t}'::regclass"
            ),
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

/// Two streams into a table without a key commit together by two-phase
/// commit, each stream's rows seen only by its own transaction until then:
/// the receipt adds up what each stream measured of its own rows, names
/// the column and the row a trigger changed, refuses with the table as it
/// was and no prepared transaction left; without the trigger it proves
/// every row.
#[tokio::test(flavor = "multi_thread")]
async fn a_two_phase_append_proves_its_streams_rows() {
    let s = Scratch::new("rcpt_2pc").await;
    let t = s.table("events");
    s.db.batch_execute(&format!(
        "CREATE TABLE {t} (id bigint, v bigint);
         CREATE FUNCTION {schema}.nudge() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id = 123457 THEN NEW.v := NEW.v + 1; END IF; RETURN NEW; END $$;
         CREATE TRIGGER nudge BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {schema}.nudge()",
        schema = s.schema
    ))
    .await
    .unwrap();
    let mut csv = String::with_capacity(4 << 20);
    csv.push_str("id,v\n");
    for i in 1..=300_000u64 {
        csv.push_str(&format!("{i},{}\n", i * 7));
    }
    // Locks on the table held by prepared transactions (no process).
    let prepared = || async {
        s.scalar::<i64>(&format!(
            "SELECT count(*) FROM pg_locks WHERE pid IS NULL AND locktype = 'relation' AND relation = to_regclass('{t}')"
        ))
        .await
    };
    let o = load(&s, &csv, &t, "", &["--streams", "2"]);
    refused(&s, &o, &t, "v", 0).await;
    assert!(
        text(&o).contains(
            "first at row 123457 of the rows loaded: ferry sent 864199, PostgreSQL stored 864200"
        ),
        "{}",
        text(&o)
    );
    assert_eq!(prepared().await, 0);
    s.db.batch_execute(&format!("DROP TRIGGER nudge ON {t}"))
        .await
        .unwrap();
    let o = load(&s, &csv, &t, "", &["--streams", "2"]);
    let r = receipt(&o);
    assert_eq!(r["rows"], 300_000, "{r}");
    assert_eq!(prepared().await, 0);
    let sum: i64 = s.scalar(&format!("SELECT sum(v)::int8 FROM {t}")).await;
    assert_eq!(sum, 7 * 300_000 * 300_001 / 2);
    // Two-phase: each stream's rows carry its own transaction, not the
    // ledger entry's (a staging table's INSERT … SELECT would).
    let (streams, with_ledger): (i64, i64) = {
        let row =
            s.db.query_one(
                &format!(
                    "SELECT count(DISTINCT xmin::text), count(*) FILTER (WHERE xmin = (SELECT xmin FROM ferry.loads WHERE target = '{t}'))
                       FROM {t}"
                ),
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((streams, with_ledger), (2, 0));
}
