//! Progress on a terminal: bytes read and rows loaded, redrawn a few times a
//! second by a ticker, so the data path only bumps atomic counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display that is a no-op when disabled (not a terminal, JSON logs).
pub struct Progress {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// A disabled display.
    pub fn hidden() -> Self {
        Progress {
            bar: None,
            ticker: None,
        }
    }

    /// Starts a display for an input of `total_bytes`, polling the counters.
    pub fn start(
        enabled: bool,
        total_bytes: u64,
        bytes: Arc<dyn Fn() -> u64 + Send + Sync>,
        rows: Arc<AtomicU64>,
    ) -> Self {
        if !enabled {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(
            Some(total_bytes.max(1)),
            ProgressDrawTarget::stderr_with_hz(8),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {decimal_bytes}/{decimal_total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let b = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                b.set_position(bytes().min(total_bytes));
                let r = rows.load(Ordering::Relaxed);
                let secs = b.elapsed().as_secs_f64().max(1e-3);
                b.set_message(format!("{r} rows ({:.0} rows/s)", r as f64 / secs));
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        });
        Progress {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    /// Clears the display.
    pub fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
