//! Longest-first scheduling of per-column work on the rayon pool.
//!
//! A validation digests and reads back one task per column, and is done
//! when its slowest column is. Column costs differ tenfold
//! (lineitem's free-text `l_comment`, last in its schema, takes about a
//! third of the encoding; a one-byte flag almost nothing), and a plain
//! parallel iterator hands them out in schema order, so the costliest
//! column could start last while the other cores had nothing left to do:
//! SF 10 CSV → Parquet kept 1.5 of 2 cores busy. Starting the tasks
//! forecast longest first, each core taking the next as it frees up (list
//! scheduling, LPT), leaves at most one short task at the end. (The Parquet
//! writer's per-batch column writes have since left the fork-join for
//! per-column lanes, `convert::writers::lanes`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

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
}
