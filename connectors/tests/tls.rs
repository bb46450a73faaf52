//! TLS to PostgreSQL against the test server, whose certificate (for
//! localhost and 127.0.0.1) a throwaway CA signed (`scripts/pg.sh`): each
//! `sslmode` does what libpq's does, verification fails against the wrong CA
//! and the wrong host name, and a binary COPY load runs encrypted.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use ferry_connectors::pg::load::{
    Begin, CopyChunk, InputIdentity, LoadRequest, LoadSession, Outcome, OutputColumn,
};
use ferry_connectors::pg::{BinaryEncoder, LoadMode, PgConfig, PgType, QualifiedName};
use ferry_connectors::store::Checksum;

fn url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("these tests need PostgreSQL: run scripts/test, or set FERRY_TEST_DATABASE_URL")
    })
}

/// The CA that signed the server's certificate (`scripts/pg.sh ca`).
fn ca() -> PathBuf {
    let ca = std::env::var("FERRY_TEST_PG_CA").unwrap_or_else(|_| {
        panic!("set FERRY_TEST_PG_CA to `scripts/pg.sh ca` (scripts/test does)")
    });
    let ca = PathBuf::from(ca);
    assert!(ca.is_file(), "{}: no such CA file", ca.display());
    ca
}

/// The test URL (`postgres://user@host:port/db?…`) with another host and
/// the given query instead of its own.
fn with_tls(host: &str, params: &str) -> String {
    let u = url();
    let base = u.split_once('?').map_or(u.as_str(), |(b, _)| b);
    let (user, rest) = base.split_once('@').expect("the test URL has user@host");
    let (_, port_db) = rest.split_once(':').expect("the test URL has host:port");
    format!("{user}@{host}:{port_db}?{params}")
}

/// Whether the session is encrypted, as the server sees it.
async fn encrypted(url: &str) -> Result<bool, String> {
    let cfg = PgConfig::from_url_or_env(Some(url)).map_err(|e| e.to_string())?;
    let client = cfg.connect().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_sslmode_does_what_libpq_does() {
    let ca = ca();
    let untrusted = ca.with_file_name("untrusted-ca.crt");
    let root = |p: &PathBuf| format!("sslrootcert={}", p.display());
    // No TLS, opportunistic TLS, TLS without verification.
    assert_eq!(
        encrypted(&with_tls("127.0.0.1", "sslmode=disable")).await,
        Ok(false)
    );
    assert_eq!(
        encrypted(&with_tls("127.0.0.1", "sslmode=prefer")).await,
        Ok(true)
    );
    assert_eq!(
        encrypted(&with_tls("127.0.0.1", "sslmode=require")).await,
        Ok(true)
    );
    // Verified against the right CA, for both names on the certificate.
    for host in ["localhost", "127.0.0.1"] {
        let u = with_tls(host, &format!("sslmode=verify-full&{}", root(&ca)));
        assert_eq!(encrypted(&u).await, Ok(true), "{host}");
    }
    // A name not on the certificate (reached through hostaddr): verify-ca checks only the
    // chain and passes; verify-full checks the name too and refuses.
    let other = |mode: &str| {
        with_tls(
            "wrong-name.invalid",
            &format!("sslmode={mode}&hostaddr=127.0.0.1&{}", root(&ca)),
        )
    };
    assert_eq!(encrypted(&other("verify-ca")).await, Ok(true), "verify-ca");
    let err = encrypted(&other("verify-full"))
        .await
        .expect_err("verify-full must refuse a name not on the certificate");
    assert!(
        err.to_lowercase().contains("certificate"),
        "the error should say why: {err}"
    );
    // The wrong CA: refused, saying it is the certificate.
    for mode in ["verify-ca", "verify-full"] {
        let u = with_tls("localhost", &format!("sslmode={mode}&{}", root(&untrusted)));
        let err = encrypted(&u).await.expect_err(mode);
        assert!(
            err.to_lowercase().contains("certificate"),
            "{mode}: the error should say why: {err}"
        );
    }
    // A CA file that does not exist: a configuration error naming it.
    let u = with_tls(
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    let err = encrypted(&u).await.expect_err("missing CA file");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_copy_load_runs_over_verified_tls() {
    let url = with_tls(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca().display()),
    );
    let cfg = PgConfig::from_url_or_env(Some(&url)).unwrap();
    let admin = cfg.connect().await.unwrap();
    let schema = format!("tls_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap();
    let table = QualifiedName::new(&schema, "t");
    let columns = vec![
        OutputColumn {
            name: "id".into(),
            data_type: DataType::Int64,
            nullable: false,
            pg: PgType::Int8,
            declared: false,
        },
        OutputColumn {
            name: "note".into(),
            data_type: DataType::Utf8,
            nullable: true,
            pg: PgType::Text,
            declared: false,
        },
    ];
    let job_id = format!("0190f3c2-7b1e-7c3a-9f00-tls{:09}", std::process::id());
    let req = LoadRequest {
        verify: Default::default(),
        target: table.clone(),
        mode: LoadMode::Append,
        keys: vec![],
        streams: 2,
        create: true,
        force: false,
        input: InputIdentity {
            input: format!("tls-{job_id}.csv"),
            checksum: Checksum::known("tls"),
            bytes: 1,
        },
        dataset: "tls".into(),
        job_id: job_id.clone(),
        columns,
        drift: Default::default(),
        format: Default::default(),
    };
    let Begin::Ready(session) = LoadSession::begin(&cfg, req).await.unwrap() else {
        panic!("a fresh input is not already loaded")
    };
    // Every connection of the load (control and both COPY streams) is encrypted.
    // The loader names its connections "ferry <last 12 alphanumerics of the job id>".
    let alnum: String = job_id.chars().filter(char::is_ascii_alphanumeric).collect();
    let app = format!("ferry {}", &alnum[alnum.len() - 12..]);
    let plain: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.application_name = $1 AND NOT s.ssl",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    let sessions: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((sessions, plain), (3, 0), "control + 2 streams, all TLS");
    let ids: Vec<i64> = (1..=1000).collect();
    let notes: Vec<String> = ids.iter().map(|i| format!("row {i} ✓")).collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("note", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(notes)),
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    BinaryEncoder::new(session.codecs())
        .encode(&batch, &mut bytes)
        .unwrap();
    session
        .sender()
        .send(CopyChunk {
            bytes: Bytes::from(bytes),
            rows: 1000,
            first_row: 0,
        })
        .await
        .unwrap();
    let out = session.finish(1000, None).await.unwrap();
    assert!(matches!(out, Outcome::Loaded { rows: 1000, .. }), "{out:?}");
    let (n, sum): (i64, i64) = {
        let r = admin
            .query_one(
                &format!("SELECT count(*), sum(id)::bigint FROM {}", table.quoted()),
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((n, sum), (1000, 500_500));
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
