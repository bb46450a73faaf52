//! Longest-first scheduling of per-column work on the rayon pool.
//!
//! A Parquet row group's columns are encoded one task per column, and a
//! validation digests and reads back one task per column; each batch (or
//! file) is done when its slowest column is. Column costs differ tenfold
//! (lineitem's free-text `l_comment`, last in its schema, takes about a
//! third of the encoding; a one-byte flag almost nothing), and a plain
//! parallel iterator hands them out in schema order, so the costliest
//! column could start last while the other cores had nothing left to do:
//! SF 10 CSV → Parquet kept 1.5 of 2 cores busy. Starting the tasks
//! forecast longest first, each core taking the next as it frees up (list
//! scheduling, LPT), leaves at most one short task at the end.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use rayon::prelude::*;

/// Runs `work(i, item)` for every item on the rayon pool, in decreasing
/// order of `forecast(i)` (ties in item order), each core taking the next
/// item as it frees up. Every item runs even after one fails; the results
/// come back in item order, or the first error in item order.
pub fn run<T: Send, R: Send, E: Send>(
    items: Vec<T>,
    forecast: impl Fn(usize) -> u64,
    work: impl Fn(usize, T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(forecast(i)));
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<Result<R, E>>>> =
        slots.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, order.len().max(1));
    (0..workers).into_par_iter().for_each(|_| {
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let item = slots[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(item) = item {
                let outcome = work(i, item);
                *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
            }
        }
    });
    results
        .into_iter()
        .filter_map(|r| r.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

/// A forecast from experience: the time each task took at its last run.
/// Column costs are stable from batch to batch, so the previous batch's
/// times order the next one.
pub struct Timed {
    nanos: Vec<AtomicU64>,
}

impl Timed {
    /// A forecast for `tasks` tasks, none run yet (so the first batch runs
    /// them in order).
    pub fn new(tasks: usize) -> Timed {
        Timed {
            nanos: (0..tasks).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// [`run`], forecast by each task's last time, recording this one's.
    pub fn run<T: Send, R: Send, E: Send>(
        &self,
        items: Vec<T>,
        work: impl Fn(T) -> Result<R, E> + Sync,
    ) -> Result<Vec<R>, E> {
        run(
            items,
            |i| self.nanos.get(i).map_or(0, |n| n.load(Ordering::Relaxed)),
            |i, item| {
                let start = Instant::now();
                let outcome = work(item);
                if let Some(n) = self.nanos.get(i) {
                    n.store(
                        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                }
                outcome
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item runs exactly once and results keep item order, whatever
    /// the forecast.
    #[test]
    fn every_item_runs_once_and_results_keep_item_order() {
        let ran: Vec<AtomicUsize> = (0..50).map(|_| AtomicUsize::new(0)).collect();
        let got = run(
            (0..50u64).collect(),
            |i| (i as u64 * 7919) % 13,
            |i, v| -> Result<u64, ()> {
                ran[i].fetch_add(1, Ordering::Relaxed);
                Ok(v * 2)
            },
        )
        .unwrap();
        assert_eq!(got, (0..50u64).map(|v| v * 2).collect::<Vec<_>>());
        assert!(ran.iter().all(|n| n.load(Ordering::Relaxed) == 1));
    }

    /// On one worker the order is exactly the forecast's, longest first.
    #[test]
    fn one_worker_starts_the_longest_forecast_first() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let started = Mutex::new(Vec::new());
        pool.install(|| {
            run(
                vec!['a', 'b', 'c', 'd'],
                |i| [5, 40, 5, 9][i],
                |_, c| -> Result<(), ()> {
                    started.lock().unwrap().push(c);
                    Ok(())
                },
            )
        })
        .unwrap();
        assert_eq!(started.into_inner().unwrap(), vec!['b', 'd', 'a', 'c']);
    }

    /// A failing task does not stop the others; the first failure in item
    /// order is the one reported.
    #[test]
    fn failures_are_reported_in_item_order_after_all_ran() {
        let ran = AtomicUsize::new(0);
        let got = run(
            vec![0, 1, 2, 3],
            |i| i as u64,
            |_, v: usize| -> Result<(), usize> {
                ran.fetch_add(1, Ordering::Relaxed);
                if v >= 2 { Err(v) } else { Ok(()) }
            },
        );
        assert_eq!(got, Err(2));
        assert_eq!(ran.load(Ordering::Relaxed), 4);
    }

    /// The timed forecast learns which task was slow, and the next run
    /// starts it first.
    #[test]
    fn the_timed_forecast_remembers_the_slow_task() {
        let plan = Timed::new(4);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let work = |i: usize| -> Result<usize, ()> {
            if i == 3 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(i)
        };
        assert_eq!(
            pool.install(|| plan.run(vec![0, 1, 2, 3], work)),
            Ok(vec![0, 1, 2, 3])
        );
        let started = Mutex::new(Vec::new());
        pool.install(|| {
            plan.run(vec![0, 1, 2, 3], |i| {
                started.lock().unwrap().push(i);
                work(i)
            })
        })
        .unwrap();
        assert_eq!(started.into_inner().unwrap()[0], 3);
    }
}
