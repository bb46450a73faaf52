//! Per-column lanes: a row group's columns encoded without a barrier at
//! every batch.
//!
//! The Parquet sink used to encode each 8192-row batch as a fork-join over
//! its columns (longest first) and wait for all of them before taking the
//! next. Thread states of an SF 10 CSV → Parquet conversion
//! (`benchmarks/results/2026-12-07-vm-convert-scaling-b/`) found the sink
//! asleep on its column tasks in 194 of 211 samples and the pool threads
//! idle a third of the time: every batch ended with one core finishing the
//! slowest column alone while the decoder's next slices waited behind the
//! barrier.
//!
//! Here each column is a lane: its values queue in order and one pool task
//! at a time drains them, so column `i` of batch `n + 1` is encoded while
//! column `j` of batch `n` still is, and the decoder's tasks interleave with
//! both. The order within a column — the only order the writer needs — is
//! kept by the queue. The sink waits only when [`WINDOW`] batches are queued
//! (memory stays bounded) and when the row group closes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Batches a lane may fall behind the sink before the sink waits. Each
/// holds one 8192-row batch's arrays alive (about 1.5 MB of lineitem).
pub const WINDOW: usize = 8;

/// One writer per column, each fed in order on the rayon pool.
///
/// Driven from a thread outside the pool (the converter's sink thread):
/// [`Lanes::submit`] and [`Lanes::finish`] block until lanes catch up, and
/// a pool thread blocked there could be the one a lane needs.
pub struct Lanes<W: Send + 'static, T: Send + 'static, E: Send + 'static> {
    shared: Arc<Shared<W, T, E>>,
    /// Batches submitted.
    submitted: u64,
}

struct Shared<W, T, E> {
    lanes: Vec<Lane<W, T>>,
    work: fn(&mut W, T) -> Result<(), E>,
    state: Mutex<State<E>>,
    changed: Condvar,
    /// Set at the first failure, or when the lanes are dropped unfinished:
    /// the values still queued are then dropped instead of written.
    stop: AtomicBool,
}

struct Lane<W, T> {
    queue: Mutex<Queue<T>>,
    writer: Mutex<Option<W>>,
    /// Values this lane has written (or dropped after a failure).
    written: AtomicU64,
    /// Time this lane has spent writing: lanes start longest first, so the
    /// costliest column is not the one left waiting for a core.
    nanos: AtomicU64,
}

struct Queue<T> {
    items: VecDeque<T>,
    /// A pool task is draining this queue; no second one may start.
    draining: bool,
}

struct State<E> {
    /// The first failure; the lanes stop writing after it.
    error: Option<E>,
    /// The sink is waiting for a lane to catch up.
    waiting: bool,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Send + 'static, T: Send + 'static, E: Send + 'static> Lanes<W, T, E> {
    /// Lanes over `writers`, each value written by `work`.
    pub fn new(writers: Vec<W>, work: fn(&mut W, T) -> Result<(), E>) -> Self {
        let lanes = writers
            .into_iter()
            .map(|w| Lane {
                queue: Mutex::new(Queue {
                    items: VecDeque::new(),
                    draining: false,
                }),
                writer: Mutex::new(Some(w)),
                written: AtomicU64::new(0),
                nanos: AtomicU64::new(0),
            })
            .collect();
        Lanes {
            shared: Arc::new(Shared {
                lanes,
                work,
                state: Mutex::new(State {
                    error: None,
                    waiting: false,
                }),
                changed: Condvar::new(),
                stop: AtomicBool::new(false),
            }),
            submitted: 0,
        }
    }

    /// Queues one value per lane (a batch's columns, in lane order), after
    /// waiting while the slowest lane is [`WINDOW`] batches behind. Returns
    /// an earlier value's failure, if any.
    pub fn submit(&mut self, values: Vec<T>) -> Result<(), E> {
        let s = &self.shared;
        // One value per lane, or the lanes without one would never catch
        // up and `finish` would wait forever: a caller's bug, not input.
        assert_eq!(values.len(), s.lanes.len(), "one value per lane");
        debug_assert!(
            rayon::current_thread_index().is_none(),
            "submit on the pool"
        );
        let submitted = self.submitted;
        s.wait_until(|written| submitted.saturating_sub(written) < WINDOW as u64)?;
        self.submitted += 1;
        let mut values: Vec<(usize, T)> = values.into_iter().enumerate().collect();
        // Longest first: the pool takes spawned drains in order.
        values.sort_by_key(|(i, _)| std::cmp::Reverse(s.lanes[*i].nanos.load(Ordering::Relaxed)));
        for (i, value) in values {
            let lane = &s.lanes[i];
            let start = {
                let mut q = lock(&lane.queue);
                q.items.push_back(value);
                !std::mem::replace(&mut q.draining, true)
            };
            if start {
                let shared = self.shared.clone();
                rayon::spawn(move || shared.drain(i));
            }
        }
        Ok(())
    }

    /// Waits for every queued value, then hands the writers back in lane
    /// order (to close the row group), or the first failure. After a
    /// failure has been returned the lanes are spent: drop them.
    pub fn finish(self) -> Result<Vec<W>, E> {
        let submitted = self.submitted;
        let s = &self.shared;
        s.wait_until(|written| written >= submitted)?;
        Ok(s.lanes
            .iter()
            .filter_map(|l| lock(&l.writer).take())
            .collect())
    }
}

impl<W, T, E> Shared<W, T, E> {
    /// Writes lane `i`'s values in order until its queue is empty.
    fn drain(&self, i: usize) {
        let Some(lane) = self.lanes.get(i) else {
            return;
        };
        loop {
            let value = {
                let mut q = lock(&lane.queue);
                match q.items.pop_front() {
                    Some(v) => v,
                    None => {
                        q.draining = false;
                        return;
                    }
                }
            };
            let mut error = None;
            if !self.stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                if let Some(w) = lock(&lane.writer).as_mut() {
                    error = (self.work)(w, value).err();
                }
                lane.nanos.fetch_add(
                    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
            }
            // The failure and the count change together under the state
            // lock, where the sink checks both: a sink that sees the last
            // value counted also sees its failure, and one that checked
            // before is waiting and gets woken.
            let mut state = lock(&self.state);
            if let Some(e) = error {
                self.stop.store(true, Ordering::Relaxed);
                state.error.get_or_insert(e);
            }
            lane.written.fetch_add(1, Ordering::Release);
            if std::mem::take(&mut state.waiting) {
                self.changed.notify_one();
            }
        }
    }

    /// The values the slowest lane has written.
    fn slowest(&self) -> u64 {
        self.lanes
            .iter()
            .map(|l| l.written.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Waits until `ready(values the slowest lane wrote)`, or returns the
    /// first failure.
    fn wait_until(&self, ready: impl Fn(u64) -> bool) -> Result<(), E> {
        let mut state = lock(&self.state);
        loop {
            if let Some(e) = state.error.take() {
                return Err(e);
            }
            if self.stop.load(Ordering::Relaxed) || ready(self.slowest()) {
                // After a failure (already reported) nothing is queued that
                // will be written: the sink's next call finds it stopped.
                return Ok(());
            }
            state.waiting = true;
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl<W: Send + 'static, T: Send + 'static, E: Send + 'static> Drop for Lanes<W, T, E> {
    fn drop(&mut self) {
        // Unfinished (the sink failed or was dropped): drop what is queued.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each lane's values reach its writer in submission order, whatever
    /// the pool's interleaving, and every value is written once.
    #[test]
    fn each_lane_keeps_its_order() {
        let mut lanes: Lanes<Vec<u32>, u32, ()> = Lanes::new(vec![Vec::new(); 5], |w, v| {
            if v % 7 == 0 {
                std::thread::yield_now();
            }
            w.push(v);
            Ok(())
        });
        for batch in 0..200u32 {
            lanes
                .submit((0..5).map(|c| batch * 10 + c).collect())
                .unwrap();
        }
        let writers = lanes.finish().unwrap();
        for (c, w) in writers.iter().enumerate() {
            let want: Vec<u32> = (0..200).map(|b| b * 10 + c as u32).collect();
            assert_eq!(w, &want, "lane {c}");
        }
    }

    /// The sink never runs more than the window ahead of the slowest lane.
    #[test]
    fn the_sink_waits_for_a_slow_lane() {
        static SLOW_WRITTEN: AtomicU64 = AtomicU64::new(0);
        let mut lanes: Lanes<u8, (u8, u64), ()> = Lanes::new(vec![0, 1], |w, (_, _)| {
            if *w == 1 {
                std::thread::sleep(std::time::Duration::from_millis(2));
                SLOW_WRITTEN.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
        for n in 0..40u64 {
            lanes.submit(vec![(0, n), (1, n)]).unwrap();
            let behind = n + 1 - SLOW_WRITTEN.load(Ordering::SeqCst);
            assert!(behind <= WINDOW as u64, "{behind} batches behind");
        }
        lanes.finish().unwrap();
        assert_eq!(SLOW_WRITTEN.load(Ordering::SeqCst), 40);
    }

    /// A failure of the very last value is still reported by finish.
    #[test]
    fn a_failing_last_value_fails_finish() {
        for _ in 0..200 {
            let mut lanes: Lanes<(), u32, u32> =
                Lanes::new(vec![(); 3], |_, v| if v == 2 { Err(v) } else { Ok(()) });
            lanes.submit(vec![0, 1, 2]).unwrap();
            assert_eq!(lanes.finish().map(|_| ()), Err(2));
        }
    }

    /// A failure is reported by a later submit or by finish, and the
    /// values queued after it are not written.
    #[test]
    fn a_failure_stops_the_lanes_and_is_reported() {
        let mut lanes: Lanes<Vec<u32>, u32, u32> = Lanes::new(vec![Vec::new(); 2], |w, v| {
            if v == 13 {
                return Err(v);
            }
            w.push(v);
            Ok(())
        });
        let mut first_error = None;
        for v in 0..100u32 {
            if let Err(e) = lanes.submit(vec![v, v + 1000]) {
                first_error = Some(e);
                break;
            }
        }
        let outcome = match first_error {
            Some(e) => Err(e),
            None => lanes.finish().map(|_| ()),
        };
        assert_eq!(outcome, Err(13));
    }
}
