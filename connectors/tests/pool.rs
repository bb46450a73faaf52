//! The per-process connection pool (`pg/pool.rs`) against the test server:
//! a connection said clean serves the next job and takes its
//! `application_name`; one not said clean is closed; the cap makes a
//! checkout wait until a connection goes back, and a job asking for more
//! than the cap gets the cap.

use std::time::Duration;

use ferry_connectors::pg::{Conn, PgConfig};

fn url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("these tests need PostgreSQL: run scripts/test, or set FERRY_TEST_DATABASE_URL")
    })
}

async fn pid(c: &Conn) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn app(c: &Conn) -> String {
    c.query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn clean_connections_are_reused_and_the_cap_queues_the_rest() {
    let cfg = PgConfig::from_url_or_env(Some(&url()))
        .unwrap()
        .with_pool(2);
    let pool = cfg.pool().unwrap().clone();

    // Kept: the next job gets the same backend, under its own name.
    let mut a = cfg
        .clone()
        .with_application_name("ferry job-a")
        .checkout(1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let first = pid(&a).await;
    assert_eq!(app(&a).await, "ferry job-a");
    a.keep();
    drop(a);
    assert_eq!(pool.idle_count(), 1);
    let b = cfg
        .clone()
        .with_application_name("ferry job-b")
        .checkout(1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(pid(&b).await, first, "a clean connection was not reused");
    assert_eq!(app(&b).await, "ferry job-b");

    // Not kept (a failed job's): closed, never handed on.
    drop(b);
    assert_eq!(pool.idle_count(), 0);
    let c = cfg.checkout(1).await.unwrap().pop().unwrap();
    assert_ne!(
        pid(&c).await,
        first,
        "a connection not said clean was reused"
    );

    // The cap: with two out, a third waits until one goes back.
    let d = cfg.checkout(1).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), cfg.checkout(1)).await;
    assert!(waiting.is_err(), "a third connection past a cap of two");
    let later = tokio::spawn({
        let cfg = cfg.clone();
        async move { cfg.checkout(1).await.unwrap().len() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(c);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), later)
            .await
            .expect("the waiting checkout never got the returned slot")
            .unwrap(),
        1
    );
    drop(d);

    // A job asking for more than the cap gets the cap, at once.
    let many = cfg.checkout(5).await.unwrap();
    assert_eq!(many.len(), 2);
}
