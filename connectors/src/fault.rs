//! Named points of a load where a fault test can stop ferry on purpose.
//!
//! Random delays land in the long phases (COPY) and almost never in the
//! short ones (the publish statements, the ledger insert, the moments
//! around `COMMIT`), which are where atomicity is decided. With
//! `FERRY_FAULT_POINT=<name>` set, ferry prints `ferry: fault point <name>
//! reached` on stderr when it gets there and pauses for
//! `FERRY_FAULT_PAUSE_MS` (default 1 000 ms), so a test can terminate its
//! PostgreSQL backends or SIGKILL it at exactly that point, then let it go
//! on. Unset (every real run), a point is one comparison against a value
//! read once. PostgreSQL's own injection points serve the same purpose.

use std::sync::OnceLock;
use std::time::Duration;

/// The points of a load, in the order it passes them. A job step has one
/// more, [`after_step`].
pub const POINTS: [&str; 4] = [COPY, PUBLISH, LEDGER, COMMITTED];
/// The points of a two-phase `append` (several streams into an existing
/// table), in order.
pub const TWO_PHASE_POINTS: [&str; 6] =
    [COPY, PUBLISH, LEDGER, PREPARED, COMMITTED, COMMIT_PREPARED];
/// Mid-COPY: the first stream has sent its first chunk of rows.
pub const COPY: &str = "copy";
/// Every stream's COPY is done and the rows are published to the target
/// (appended, swapped in or merged), not yet recorded.
pub const PUBLISH: &str = "publish";
/// The ledger entry is written; `COMMIT` is next (a two-phase load
/// prepares its streams first).
pub const LEDGER: &str = "ledger";
/// Two-phase `append`: every stream's transaction is prepared, the control
/// transaction (with the ledger entry) not yet committed.
pub const PREPARED: &str = "prepared";
/// Two-phase `append`: the control transaction committed and the first
/// stream's `COMMIT PREPARED` done; the others are still prepared.
pub const COMMIT_PREPARED: &str = "commit-prepared";
/// `COMMIT` returned; ferry has not yet reported the load.
pub const COMMITTED: &str = "committed";
/// Not a load's: the job is recorded finished, its event not yet sent.
pub const FINISHED: &str = "finished";

fn armed() -> Option<&'static (String, Duration)> {
    static AT: OnceLock<Option<(String, Duration)>> = OnceLock::new();
    AT.get_or_init(|| {
        let name = std::env::var("FERRY_FAULT_POINT").ok()?;
        let ms = std::env::var("FERRY_FAULT_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000);
        Some((name, Duration::from_millis(ms)))
    })
    .as_ref()
}

/// Pauses here when `FERRY_FAULT_POINT` names this point (see the module
/// documentation); does nothing otherwise.
pub async fn point(name: &'static str) {
    if let Some((at, pause)) = armed()
        && at == name
    {
        reached(at, *pause).await;
    }
}

/// The point `after <step>`: a job step's work is done and its success not
/// yet recorded in the job store (the moment a crash leaves the store
/// behind the world).
pub async fn after_step(step: &str) {
    if let Some((at, pause)) = armed()
        && at.strip_prefix("after ") == Some(step)
    {
        reached(at, *pause).await;
    }
}

async fn reached(at: &str, pause: Duration) {
    eprintln!("ferry: fault point {at} reached");
    tokio::time::sleep(pause).await;
}
