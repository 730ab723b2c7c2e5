//! Dynamic batching: concurrent requests to one model merged into batches.
//!
//! - A bounded queue: [`Batcher::submit`] answers [`ModelError::Overloaded`] at once when it is
//!   full (the service answers 429).
//! - A worker takes a batch when it holds `max_batch` items, when the queued tokens reach the
//!   token budget, or when the oldest item has waited `max_delay`.
//! - Batches are formed by length: the oldest item is taken with the queued items closest to it
//!   in length (cost), as many as fit `max_batch` and the token budget counted with padding
//!   (`items × longest`), so padding stays small.
//! - Every item may carry a deadline: an item whose deadline passed before its batch ran is
//!   answered [`ModelError::DeadlineExceeded`] without running, and a caller waiting with
//!   [`Batcher::call`] stops waiting at its deadline.
//!
//! Each caller gets its own result through its own reply channel, whatever batch it ran in.
//! Native only (it runs worker threads).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokenizers::Encoding;

use crate::embed::EmbeddingModel;
use crate::error::ModelError;
use crate::nli::{NliModel, NliScores};
use crate::tokenize::Overflow;

/// Batcher settings.
#[derive(Debug, Clone)]
pub struct BatcherConfig {
    /// Name in errors and metrics (the model's).
    pub name: String,
    /// Most items in one batch.
    pub max_batch: usize,
    /// Longest an item waits for others before its batch runs anyway.
    pub max_delay: Duration,
    /// Most padded tokens in one batch (items × longest item's cost); one item over it runs alone.
    pub token_budget: usize,
    /// Most items waiting; more are refused with [`ModelError::Overloaded`].
    pub queue_capacity: usize,
    /// Worker threads (each runs one batch at a time).
    pub workers: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            name: "model".into(),
            max_batch: 32,
            max_delay: Duration::from_millis(2),
            token_budget: 32 * 64,
            queue_capacity: 1024,
            workers: 1,
        }
    }
}

type Reply<O> = Box<dyn FnOnce(Result<O, ModelError>) + Send>;
type Process<I, O> = dyn Fn(Vec<I>) -> Result<Vec<O>, ModelError> + Send + Sync;

struct Job<I, O> {
    item: I,
    cost: usize,
    enqueued: Instant,
    deadline: Option<Instant>,
    reply: Reply<O>,
}

struct State<I, O> {
    queue: Vec<Job<I, O>>,
    shutdown: bool,
}

struct Shared<I, O> {
    state: Mutex<State<I, O>>,
    wake: Condvar,
    config: BatcherConfig,
    process: Box<Process<I, O>>,
    batches: AtomicU64,
    items: AtomicU64,
    expired: AtomicU64,
    rejected: AtomicU64,
    /// Workers running a batch now.
    busy: std::sync::atomic::AtomicUsize,
}

/// Counters of a batcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Items waiting now.
    pub queued: usize,
    /// Batches run.
    pub batches: u64,
    /// Items run.
    pub items: u64,
    /// Items answered `deadline_exceeded` without running.
    pub expired: u64,
    /// Items refused because the queue was full.
    pub rejected: u64,
}

/// A dynamic batcher in front of a batch function `Vec<I> -> Vec<O>`.
pub struct Batcher<I: Send + 'static, O: Send + 'static> {
    shared: Arc<Shared<I, O>>,
    workers: Vec<JoinHandle<()>>,
}

impl<I: Send + 'static, O: Send + 'static> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("config", &self.shared.config).field("stats", &self.stats()).finish()
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the workers. `process` gets the items of one batch and must return one output
    /// per item, in order; an error is given to every caller of that batch.
    pub fn new(
        config: BatcherConfig,
        process: impl Fn(Vec<I>) -> Result<Vec<O>, ModelError> + Send + Sync + 'static,
    ) -> Self {
        let mut config = config;
        config.max_batch = config.max_batch.max(1);
        config.queue_capacity = config.queue_capacity.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State { queue: Vec::new(), shutdown: false }),
            wake: Condvar::new(),
            config,
            process: Box::new(process),
            batches: AtomicU64::new(0),
            items: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            busy: std::sync::atomic::AtomicUsize::new(0),
        });
        let workers = (0..shared.config.workers.max(1))
            .map(|i| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(format!("isl-batch-{}-{i}", s.config.name))
                    .spawn(move || worker(&s))
                    .unwrap_or_else(|e| panic!("cannot start a batcher thread: {e}"))
            })
            .collect();
        Batcher { shared, workers }
    }

    /// The settings.
    pub fn config(&self) -> &BatcherConfig {
        &self.shared.config
    }

    /// Counters.
    pub fn stats(&self) -> BatcherStats {
        let queued = self.shared.state.lock().map(|s| s.queue.len()).unwrap_or(0);
        BatcherStats {
            queued,
            batches: self.shared.batches.load(Ordering::Relaxed),
            items: self.shared.items.load(Ordering::Relaxed),
            expired: self.shared.expired.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
        }
    }

    /// Queues `item` (of `cost` tokens) and calls `reply` with its result from a worker thread.
    /// Answers [`ModelError::Overloaded`] at once when the queue is full.
    pub fn submit(
        &self,
        item: I,
        cost: usize,
        deadline: Option<Instant>,
        reply: impl FnOnce(Result<O, ModelError>) + Send + 'static,
    ) -> Result<(), ModelError> {
        self.submit_all(vec![(item, cost, Box::new(reply) as Reply<O>)], deadline)
    }

    fn submit_all(&self, jobs: Vec<(I, usize, Reply<O>)>, deadline: Option<Instant>) -> Result<(), ModelError> {
        let cfg = &self.shared.config;
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.shutdown || state.queue.len() + jobs.len() > cfg.queue_capacity {
            self.shared.rejected.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            return Err(ModelError::Overloaded { model: cfg.name.clone(), capacity: cfg.queue_capacity });
        }
        let now = Instant::now();
        for (item, cost, reply) in jobs {
            state.queue.push(Job { item, cost: cost.max(1), enqueued: now, deadline, reply });
        }
        drop(state);
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Queues `item` and waits for its result (at most until `deadline`).
    pub fn call(&self, item: I, cost: usize, deadline: Option<Instant>) -> Result<O, ModelError> {
        self.call_many(vec![(item, cost)], deadline)?
            .pop()
            .ok_or_else(|| ModelError::inference(&self.shared.config.name, "the batcher lost a result"))
    }

    /// Queues every item (all or none: the queue must have room for all) and waits for all
    /// results, in order (at most until `deadline`).
    pub fn call_many(&self, items: Vec<(I, usize)>, deadline: Option<Instant>) -> Result<Vec<O>, ModelError> {
        let n = items.len();
        let (tx, rx) = mpsc::channel::<(usize, Result<O, ModelError>)>();
        let jobs = items
            .into_iter()
            .enumerate()
            .map(|(i, (item, cost))| {
                let tx = tx.clone();
                let reply: Reply<O> = Box::new(move |r| {
                    let _ = tx.send((i, r));
                });
                (item, cost, reply)
            })
            .collect();
        drop(tx);
        self.submit_all(jobs, deadline)?;
        let mut out: Vec<Option<O>> = (0..n).map(|_| None).collect();
        for _ in 0..n {
            let received = match deadline {
                Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())).map_err(|e| match e {
                    mpsc::RecvTimeoutError::Timeout => ModelError::DeadlineExceeded { stage: "queue".into() },
                    mpsc::RecvTimeoutError::Disconnected => {
                        ModelError::inference(&self.shared.config.name, "the batcher stopped")
                    }
                }),
                None => rx.recv().map_err(|_| ModelError::inference(&self.shared.config.name, "the batcher stopped")),
            }?;
            let (i, result) = received;
            out[i] = Some(result?);
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| ModelError::inference(&self.shared.config.name, "the batcher lost a result")))
            .collect()
    }
}

impl<I: Send + 'static, O: Send + 'static> Drop for Batcher<I, O> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.shutdown = true;
        }
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker<I, O>(shared: &Shared<I, O>) {
    let cfg = &shared.config;
    loop {
        let (batch, expired) = {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if state.queue.is_empty() {
                    if state.shutdown {
                        return;
                    }
                    state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                let now = Instant::now();
                let oldest = state.queue.iter().map(|j| j.enqueued).min().unwrap_or(now);
                let cost: usize = state.queue.iter().map(|j| j.cost).sum();
                let due = oldest + cfg.max_delay;
                if state.shutdown || state.queue.len() >= cfg.max_batch || cost >= cfg.token_budget || now >= due {
                    break;
                }
                state = shared.wake.wait_timeout(state, due - now).map(|(s, _)| s).unwrap_or_else(|p| p.into_inner().0);
            }
            let idle = cfg.workers.max(1).saturating_sub(shared.busy.load(Ordering::SeqCst));
            let taken = take_batch(&mut state.queue, cfg, Instant::now(), idle);
            if !taken.0.is_empty() {
                shared.busy.fetch_add(1, Ordering::SeqCst);
            }
            taken
        };
        for job in expired {
            shared.expired.fetch_add(1, Ordering::Relaxed);
            (job.reply)(Err(ModelError::DeadlineExceeded { stage: "queue".into() }));
        }
        if batch.is_empty() {
            continue;
        }
        shared.batches.fetch_add(1, Ordering::Relaxed);
        shared.items.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().map(|j| (j.item, j.reply)).unzip();
        let n = items.len();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (shared.process)(items)));
        match result {
            Ok(Ok(outputs)) if outputs.len() == n => {
                for (reply, out) in replies.into_iter().zip(outputs) {
                    reply(Ok(out));
                }
            }
            Ok(Ok(outputs)) => {
                let e = ModelError::inference(&cfg.name, format!("{} outputs for {n} inputs", outputs.len()));
                replies.into_iter().for_each(|r| r(Err(e.clone())));
            }
            Ok(Err(e)) => replies.into_iter().for_each(|r| r(Err(e.clone()))),
            Err(_) => {
                let e = ModelError::inference(&cfg.name, "the model panicked on this batch");
                replies.into_iter().for_each(|r| r(Err(e.clone())));
            }
        }
        shared.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Removes expired jobs and the next batch from the queue: the oldest job and the jobs closest
/// to it in cost, within `max_batch`, the padded token budget and a fair share of the queue
/// (`⌈queued / idle workers⌉`, this one included, so that a lone request of many items runs on every worker at once
/// rather than on one while the others idle; a long queue still makes full batches).
type Jobs<I, O> = Vec<Job<I, O>>;

fn take_batch<I, O>(
    queue: &mut Jobs<I, O>,
    cfg: &BatcherConfig,
    now: Instant,
    idle_workers: usize,
) -> (Jobs<I, O>, Jobs<I, O>) {
    let mut expired = Vec::new();
    let mut i = 0;
    while i < queue.len() {
        if queue[i].deadline.is_some_and(|d| d <= now) {
            expired.push(queue.swap_remove(i));
        } else {
            i += 1;
        }
    }
    let Some(anchor) = (0..queue.len()).min_by_key(|&i| queue[i].enqueued) else {
        return (Vec::new(), expired);
    };
    let anchor_cost = queue[anchor].cost;
    let share = queue.len().div_ceil(idle_workers.max(1)).max(1);
    let max_batch = cfg.max_batch.min(share);
    let mut candidates: Vec<usize> = (0..queue.len()).filter(|&i| i != anchor).collect();
    candidates.sort_by_key(|&i| (queue[i].cost.abs_diff(anchor_cost), queue[i].enqueued));
    let mut chosen = vec![anchor];
    let mut longest = anchor_cost;
    for c in candidates {
        if chosen.len() >= max_batch {
            break;
        }
        let l = longest.max(queue[c].cost);
        if (chosen.len() + 1) * l > cfg.token_budget {
            continue;
        }
        longest = l;
        chosen.push(c);
    }
    chosen.sort_unstable_by(|a, b| b.cmp(a));
    let mut batch: Vec<Job<I, O>> = chosen.into_iter().map(|i| queue.swap_remove(i)).collect();
    batch.sort_by_key(|j| j.cost);
    (batch, expired)
}

/// A batcher in front of an embedding model. Callers tokenise (in their own threads) with
/// [`EmbeddingModel::tokenizer`] and submit each text's encoding with its length as cost; a
/// batch is padded to its longest row and run in one model call. Outputs are unit vectors.
pub fn embedding_batcher(model: Arc<EmbeddingModel>, config: BatcherConfig) -> Batcher<Encoding, Vec<f32>> {
    Batcher::new(config, move |encodings: Vec<Encoding>| {
        let n = encodings.len();
        let padded = model.tokenizer().pad(&encodings, vec![false; n]);
        model.embed_encoded(&padded)
    })
}

/// A batcher in front of an NLI model: items are (premise, hypothesis) pairs (cost: the
/// model's fixed length, or the pair's bytes), outputs their probabilities.
pub fn nli_batcher(model: Arc<NliModel>, config: BatcherConfig) -> Batcher<(String, String), NliScores> {
    Batcher::new(config, move |pairs: Vec<(String, String)>| Ok(model.predict(&pairs, Overflow::Truncate)?.scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_batch_groups_similar_lengths_within_the_budget() {
        let cfg = BatcherConfig { max_batch: 4, token_budget: 40, ..Default::default() };
        let t0 = Instant::now();
        let mut q: Vec<Job<usize, usize>> = [10usize, 3, 9, 30, 11, 2, 10]
            .iter()
            .enumerate()
            .map(|(k, &c)| Job {
                item: c,
                cost: c,
                enqueued: t0 + Duration::from_micros(k as u64),
                deadline: None,
                reply: Box::new(|_| {}),
            })
            .collect();
        let (b, e) = take_batch(&mut q, &cfg, t0, 1);
        assert!(e.is_empty());
        // The oldest is 10; then 10 and 9 (closest); 11 would pad four rows to 44 > 40, so it
        // waits, and 3 fits (4 × 10 = 40). The 30 and the rest wait for the next batch.
        let costs: Vec<usize> = b.iter().map(|j| j.cost).collect();
        assert_eq!(costs, vec![3, 9, 10, 10]);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn with_several_workers_a_short_queue_is_shared_out() {
        let t0 = Instant::now();
        let jobs = |n: usize| -> Vec<Job<usize, usize>> {
            (0..n)
                .map(|k| Job {
                    item: k,
                    cost: 10,
                    enqueued: t0 + Duration::from_micros(k as u64),
                    deadline: None,
                    reply: Box::new(|_| {}),
                })
                .collect()
        };
        let cfg = BatcherConfig { max_batch: 32, token_budget: 10_000, workers: 2, ..Default::default() };
        // 8 items, 2 idle workers: 4 now; the other worker (now the only idle one) takes the rest.
        let mut q = jobs(8);
        assert_eq!(take_batch(&mut q, &cfg, t0, 2).0.len(), 4);
        assert_eq!(take_batch(&mut q, &cfg, t0, 1).0.len(), 4);
        // A long queue still fills whole batches.
        let mut q = jobs(100);
        assert_eq!(take_batch(&mut q, &cfg, t0, 2).0.len(), 32);
        // With the other worker busy, one takes everything that fits.
        let mut q = jobs(8);
        assert_eq!(take_batch(&mut q, &cfg, t0, 1).0.len(), 8);
    }
}
