//! One model's generation loop: a thread that owns the model's [`Scheduler`], takes new
//! sequences between steps, runs steps while there is work, and sends each sequence's events to
//! its request. A request whose receiver is gone (the client disconnected) is cancelled at the
//! next step, which frees its cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use isl_llm::{Event, GenerationSpec, LanguageModel, QueueFull, Scheduler, SchedulerConfig, SeqId};
use tokio::sync::{mpsc as tmpsc, oneshot};

/// A fixed-bucket histogram (Prometheus style, upper bounds in seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: Mutex::new((vec![0; bounds.len()], 0.0, 0)) }
    }

    /// Adds one observation.
    pub fn observe(&self, v: f64) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                c.0[i] += 1;
            }
        }
        c.1 += v;
        c.2 += 1;
    }

    /// Prometheus lines for `name` with `labels` (`model="x"`).
    pub fn render(&self, name: &str, labels: &str, out: &mut String) {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for (b, n) in self.bounds.iter().zip(&c.0) {
            out.push_str(&format!("{name}_bucket{{{labels},le=\"{b}\"}} {n}\n"));
        }
        out.push_str(&format!("{name}_bucket{{{labels},le=\"+Inf\"}} {}\n", c.2));
        out.push_str(&format!("{name}_sum{{{labels}}} {}\n", c.1));
        out.push_str(&format!("{name}_count{{{labels}}} {}\n", c.2));
    }
}

/// Counters and gauges of one model's loop.
#[derive(Debug)]
pub struct EngineStats {
    /// Sequences waiting.
    pub queued: AtomicUsize,
    /// Sequences in the batch.
    pub running: AtomicUsize,
    /// Keys and values held, bytes.
    pub kv_bytes: AtomicUsize,
    /// Tokens generated.
    pub generated: AtomicU64,
    /// Prompt tokens computed.
    pub prefilled: AtomicU64,
    /// Prompt tokens from the prefix cache.
    pub prefix_hits: AtomicU64,
    /// Sequences cancelled (client gone).
    pub cancelled: AtomicU64,
    /// Sequences refused (queue full).
    pub rejected: AtomicU64,
    /// Steps run.
    pub steps: AtomicU64,
    /// Nanoseconds spent in steps.
    pub step_nanos: AtomicU64,
    /// Time to first token.
    pub ttft: Histogram,
    /// Time between a sequence's tokens.
    pub inter_token: Histogram,
    /// Sequences per step.
    pub batch: Histogram,
}

static TTFT_BOUNDS: [f64; 10] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
static ITL_BOUNDS: [f64; 9] = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28];
static BATCH_BOUNDS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

impl Default for EngineStats {
    fn default() -> Self {
        EngineStats {
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            kv_bytes: AtomicUsize::new(0),
            generated: AtomicU64::new(0),
            prefilled: AtomicU64::new(0),
            prefix_hits: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            step_nanos: AtomicU64::new(0),
            ttft: Histogram::new(&TTFT_BOUNDS),
            inter_token: Histogram::new(&ITL_BOUNDS),
            batch: Histogram::new(&BATCH_BOUNDS),
        }
    }
}

/// A new sequence for the loop.
pub struct Submit {
    /// What to generate.
    pub spec: GenerationSpec,
    /// When to give up.
    pub deadline: Instant,
    /// Where its events go.
    pub events: tmpsc::UnboundedSender<Event>,
    /// Whether it was queued.
    pub accepted: oneshot::Sender<Result<SeqId, QueueFull>>,
}

/// The handle of a running loop.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Submit>,
    /// Its counters.
    pub stats: Arc<EngineStats>,
    /// The model.
    pub model: Arc<LanguageModel>,
}

struct Live {
    events: tmpsc::UnboundedSender<Event>,
    submitted: Instant,
    last: Option<Instant>,
}

impl Engine {
    /// Starts the loop of `model` on its own thread.
    pub fn start(model: Arc<LanguageModel>, config: SchedulerConfig) -> Engine {
        let (tx, rx) = mpsc::channel::<Submit>();
        let stats = Arc::new(EngineStats::default());
        let engine = Engine { tx, stats: stats.clone(), model: model.clone() };
        let name = format!("llm-{}", model.id);
        let spawned =
            std::thread::Builder::new().name(name).spawn(move || run(Scheduler::new(model, config), rx, stats));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the generation thread");
        }
        engine
    }

    /// Queues a sequence; its events arrive on the returned receiver.
    pub async fn submit(
        &self,
        spec: GenerationSpec,
        deadline: Instant,
    ) -> Result<(SeqId, tmpsc::UnboundedReceiver<Event>), QueueFull> {
        let (events, rx) = tmpsc::unbounded_channel();
        let (accepted, ok) = oneshot::channel();
        if self.tx.send(Submit { spec, deadline, events, accepted }).is_err() {
            return Err(QueueFull { queued: 0 });
        }
        match ok.await {
            Ok(Ok(id)) => Ok((id, rx)),
            Ok(Err(full)) => Err(full),
            Err(_) => Err(QueueFull { queued: 0 }),
        }
    }
}

fn run(mut s: Scheduler, rx: mpsc::Receiver<Submit>, stats: Arc<EngineStats>) {
    let mut live: HashMap<SeqId, Live> = HashMap::new();
    loop {
        let take = |sub: Submit, s: &mut Scheduler, live: &mut HashMap<SeqId, Live>| match s
            .submit(sub.spec, Some(sub.deadline))
        {
            Ok(id) => {
                live.insert(id, Live { events: sub.events, submitted: Instant::now(), last: None });
                let _ = sub.accepted.send(Ok(id));
            }
            Err(full) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                let _ = sub.accepted.send(Err(full));
            }
        };
        if s.is_idle() {
            match rx.recv() {
                Ok(sub) => take(sub, &mut s, &mut live),
                Err(_) => return,
            }
        }
        while let Ok(sub) = rx.try_recv() {
            take(sub, &mut s, &mut live);
        }
        // Sequences whose clients went away leave before the step.
        let gone: Vec<SeqId> = live.iter().filter(|(_, l)| l.events.is_closed()).map(|(id, _)| *id).collect();
        for id in gone {
            if s.cancel(id) {
                stats.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            live.remove(&id);
        }
        let batch = s.running() + s.queued().min(1);
        let t0 = Instant::now();
        let events = s.step();
        let now = Instant::now();
        stats.steps.fetch_add(1, Ordering::Relaxed);
        stats.step_nanos.fetch_add((now - t0).as_nanos() as u64, Ordering::Relaxed);
        if batch > 0 {
            stats.batch.observe(s.running().max(1) as f64);
        }
        for ev in events {
            let (id, end) = match &ev {
                Event::Token { id, .. } => (*id, false),
                Event::Finished { id, .. } | Event::Failed { id, .. } => (*id, true),
            };
            let Some(l) = live.get_mut(&id) else { continue };
            if matches!(ev, Event::Token { .. }) {
                stats.generated.fetch_add(1, Ordering::Relaxed);
                match l.last {
                    None => stats.ttft.observe((now - l.submitted).as_secs_f64()),
                    Some(prev) => stats.inter_token.observe((now - prev).as_secs_f64()),
                }
                l.last = Some(now);
            }
            let sent = l.events.send(ev).is_ok();
            if end {
                live.remove(&id);
            } else if !sent {
                if s.cancel(id) {
                    stats.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                live.remove(&id);
            }
        }
        stats.queued.store(s.queued(), Ordering::Relaxed);
        stats.running.store(s.running(), Ordering::Relaxed);
        stats.kv_bytes.store(s.kv_bytes(), Ordering::Relaxed);
        stats.prefilled.store(s.stats.prefill_tokens, Ordering::Relaxed);
        stats.prefix_hits.store(s.stats.prefix_hit_tokens, Ordering::Relaxed);
    }
}
