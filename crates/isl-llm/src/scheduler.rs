//! Continuous batching: sequences join the running batch at a step boundary, each step has a
//! token budget (every decoding sequence takes one, prompts are prefilled in chunks from what is
//! left, so a long prompt never stalls the running streams), requests that share a prompt prefix
//! reuse its keys and values from a prefix cache, the queue is bounded, and every sequence may
//! carry a deadline. Pure: the caller drives [`Scheduler::step`] and delivers the events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::LanguageModel;
use crate::error::{LlmError, Result};
use crate::model::{BatchItem, SeqCache};
use crate::sequence::{FinishReason, Generation, GenerationSpec, TokenEvent};

/// Scheduler limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Most sequences decoding together.
    pub max_batch: usize,
    /// Tokens one step processes (decode tokens plus prompt chunks); at least `max_batch`.
    pub step_tokens: usize,
    /// Most sequences waiting to start; [`Scheduler::submit`] refuses past it.
    pub max_queue: usize,
    /// Bytes of keys and values the prefix cache keeps (0: off).
    pub prefix_cache_bytes: usize,
    /// Shortest prefix worth caching, in tokens.
    pub min_prefix_tokens: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_batch: 16,
            step_tokens: 256,
            max_queue: 64,
            prefix_cache_bytes: 64 << 20,
            min_prefix_tokens: 16,
        }
    }
}

/// A sequence's handle.
pub type SeqId = u64;

/// What a step produced for one sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The prompt is in the cache and the first token is out (time to first token).
    Token {
        /// The sequence.
        id: SeqId,
        /// The token.
        token: TokenEvent,
    },
    /// The sequence ended; no more events for it.
    Finished {
        /// The sequence.
        id: SeqId,
        /// Why.
        reason: FinishReason,
        /// Text released at the end (held-back bytes).
        tail: String,
        /// Prompt tokens.
        prompt_tokens: usize,
        /// Tokens generated.
        completion_tokens: usize,
        /// Prompt tokens taken from the prefix cache.
        cached_tokens: usize,
    },
    /// The sequence failed (a model error); no more events for it.
    Failed {
        /// The sequence.
        id: SeqId,
        /// What went wrong.
        error: String,
    },
}

/// The queue is full: the caller should answer 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFull {
    /// Sequences waiting.
    pub queued: usize,
}

struct Running {
    id: SeqId,
    generation: Generation,
    cache: SeqCache,
    /// Prompt tokens already in the cache.
    prefilled: usize,
    cached_tokens: usize,
    deadline: Option<Instant>,
}

struct Waiting {
    id: SeqId,
    spec: GenerationSpec,
    deadline: Option<Instant>,
}

struct PrefixEntry {
    tokens: Vec<u32>,
    cache: SeqCache,
    bytes: usize,
    last_used: u64,
}

/// Counters the server exports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulerStats {
    /// Steps run.
    pub steps: u64,
    /// Prompt tokens prefilled (computed, not taken from the prefix cache).
    pub prefill_tokens: u64,
    /// Tokens decoded.
    pub decode_tokens: u64,
    /// Prompt tokens taken from the prefix cache.
    pub prefix_hit_tokens: u64,
    /// Sequences cancelled.
    pub cancelled: u64,
}

/// The continuous-batching scheduler of one model.
pub struct Scheduler {
    model: Arc<LanguageModel>,
    config: SchedulerConfig,
    waiting: VecDeque<Waiting>,
    running: Vec<Running>,
    prefixes: Vec<PrefixEntry>,
    prefix_bytes: usize,
    clock: u64,
    next_id: SeqId,
    /// Counters.
    pub stats: SchedulerStats,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("waiting", &self.waiting.len()).field("running", &self.running.len()).finish()
    }
}

impl Scheduler {
    /// A scheduler for `model`.
    pub fn new(model: Arc<LanguageModel>, mut config: SchedulerConfig) -> Self {
        config.max_batch = config.max_batch.max(1);
        config.step_tokens = config.step_tokens.max(config.max_batch);
        Scheduler {
            model,
            config,
            waiting: VecDeque::new(),
            running: Vec::new(),
            prefixes: Vec::new(),
            prefix_bytes: 0,
            clock: 0,
            next_id: 1,
            stats: SchedulerStats::default(),
        }
    }

    /// The model.
    pub fn model(&self) -> &Arc<LanguageModel> {
        &self.model
    }

    /// Checks `spec` against the model (prompt not empty, fits the context with `max_tokens`).
    pub fn check(&self, spec: &GenerationSpec) -> Result<()> {
        if spec.prompt.is_empty() {
            return Err(LlmError::InvalidParameter { name: "prompt", problem: "is empty".into() });
        }
        spec.sampling.validate()?;
        let ctx = self.model.model.context_length;
        if spec.prompt.len() + spec.max_tokens > ctx {
            return Err(LlmError::ContextOverflow {
                prompt: spec.prompt.len(),
                max_tokens: spec.max_tokens,
                context: ctx,
            });
        }
        Ok(())
    }

    /// Queues a generation; it joins the batch at a coming step.
    pub fn submit(&mut self, spec: GenerationSpec, deadline: Option<Instant>) -> std::result::Result<SeqId, QueueFull> {
        if self.waiting.len() >= self.config.max_queue {
            return Err(QueueFull { queued: self.waiting.len() });
        }
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.push_back(Waiting { id, spec, deadline });
        Ok(id)
    }

    /// Drops a sequence (the client went away); its cache is freed now.
    pub fn cancel(&mut self, id: SeqId) -> bool {
        if let Some(i) = self.waiting.iter().position(|w| w.id == id) {
            self.waiting.remove(i);
            self.stats.cancelled += 1;
            return true;
        }
        if let Some(i) = self.running.iter().position(|r| r.id == id) {
            self.running.swap_remove(i);
            self.stats.cancelled += 1;
            return true;
        }
        false
    }

    /// Sequences waiting to start.
    pub fn queued(&self) -> usize {
        self.waiting.len()
    }

    /// Sequences in the batch.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether there is nothing to do.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Bytes of keys and values held by running sequences and the prefix cache.
    pub fn kv_bytes(&self) -> usize {
        let cfg = &self.model.model.config;
        self.running.iter().map(|r| r.cache.bytes(cfg)).sum::<usize>() + self.prefix_bytes
    }

    /// Positions of keys and values the running sequences hold.
    pub fn kv_tokens(&self) -> usize {
        self.running.iter().map(|r| r.cache.len()).sum()
    }

    fn admit(&mut self, events: &mut Vec<Event>) {
        while self.running.len() < self.config.max_batch {
            let Some(w) = self.waiting.pop_front() else { break };
            let (cache, reused) = self.prefix_lookup(&w.spec.prompt);
            let cache = match cache {
                Ok(c) => c,
                Err(e) => {
                    events.push(Event::Failed { id: w.id, error: e.to_string() });
                    continue;
                }
            };
            self.stats.prefix_hit_tokens += reused as u64;
            self.running.push(Running {
                id: w.id,
                generation: Generation::new(w.spec),
                cache,
                prefilled: reused,
                cached_tokens: reused,
                deadline: w.deadline,
            });
        }
    }

    /// A cache holding the longest cached prefix of `prompt` (leaving at least one prompt token
    /// to run, whose logits give the first new token), and its length.
    fn prefix_lookup(&mut self, prompt: &[u32]) -> (Result<SeqCache>, usize) {
        self.clock += 1;
        let mut best: Option<(usize, usize)> = None;
        for (i, e) in self.prefixes.iter().enumerate() {
            let common = e.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
            let usable = common.min(prompt.len().saturating_sub(1));
            if usable >= self.config.min_prefix_tokens && best.is_none_or(|(_, n)| usable > n) {
                best = Some((i, usable));
            }
        }
        match best {
            Some((i, n)) => {
                self.prefixes[i].last_used = self.clock;
                (self.prefixes[i].cache.fork(n), n)
            }
            None => (Ok(self.model.model.new_cache()), 0),
        }
    }

    /// Runs one step: admits waiting sequences, ends those past their deadline, runs the model
    /// over one decode token per decoding sequence and prompt chunks within the token budget,
    /// and samples. Returns what happened, in sequence order.
    pub fn step(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let now = Instant::now();
        // Deadlines, waiting and running.
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].deadline.is_some_and(|d| d <= now) {
                if let Some(w) = self.waiting.remove(i) {
                    events.push(finished(w.id, FinishReason::Timeout, String::new(), w.spec.prompt.len(), 0, 0));
                }
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].deadline.is_some_and(|d| d <= now) {
                let mut r = self.running.swap_remove(i);
                let tail = r.generation.end(FinishReason::Timeout);
                events.push(finished_r(&r, FinishReason::Timeout, tail));
            } else {
                i += 1;
            }
        }
        self.admit(&mut events);
        if self.running.is_empty() {
            return events;
        }
        // The plan: decoders first (one token each), then prompt chunks in arrival order.
        let mut budget = self.config.step_tokens;
        let mut plan: Vec<(usize, usize, usize)> = Vec::new(); // (running index, from, len)
        for (i, r) in self.running.iter().enumerate() {
            if r.prefilled >= r.generation.spec.prompt.len() && budget > 0 {
                plan.push((i, 0, 1));
                budget -= 1;
            }
        }
        for (i, r) in self.running.iter().enumerate() {
            let left = r.generation.spec.prompt.len().saturating_sub(r.prefilled);
            if left > 0 && budget > 0 {
                let take = left.min(budget);
                plan.push((i, r.prefilled, take));
                budget -= take;
            }
        }
        plan.sort_by_key(|p| p.0);
        // Tokens of each planned item.
        let token_lists: Vec<Vec<u32>> = plan
            .iter()
            .map(|&(i, from, len)| {
                let r = &self.running[i];
                if r.prefilled >= r.generation.spec.prompt.len() {
                    vec![
                        *r.generation
                            .generated
                            .last()
                            .unwrap_or(&r.generation.spec.prompt[r.generation.spec.prompt.len() - 1]),
                    ]
                } else {
                    r.generation.spec.prompt[from..from + len].to_vec()
                }
            })
            .collect();
        let wants: Vec<bool> = plan
            .iter()
            .map(|&(i, from, len)| {
                let r = &self.running[i];
                r.prefilled >= r.generation.spec.prompt.len() || from + len == r.generation.spec.prompt.len()
            })
            .collect();
        let planned: Vec<usize> = plan.iter().map(|p| p.0).collect();
        let result = {
            let mut caches: Vec<Option<&mut SeqCache>> = self.running.iter_mut().map(|r| Some(&mut r.cache)).collect();
            let mut items: Vec<BatchItem<'_>> = Vec::with_capacity(plan.len());
            for (k, &i) in planned.iter().enumerate() {
                if let Some(cache) = caches[i].take() {
                    items.push(BatchItem { cache, tokens: &token_lists[k], want_logits: wants[k] });
                }
            }
            self.model.model.forward(&mut items)
        };
        self.stats.steps += 1;
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                // A model error fails the sequences of this step; the others go on.
                let msg = e.to_string();
                let mut failed: Vec<usize> = planned.clone();
                failed.sort_unstable_by(|a, b| b.cmp(a));
                for i in failed {
                    let r = self.running.swap_remove(i);
                    events.push(Event::Failed { id: r.id, error: msg.clone() });
                }
                return events;
            }
        };
        let tokenizer = &self.model.tokenizer;
        let mut prefix_candidates = Vec::new();
        for ((&(i, _from, len), logit), want) in plan.iter().zip(logits).zip(wants) {
            let r = &mut self.running[i];
            let decoding = r.prefilled >= r.generation.spec.prompt.len();
            if decoding {
                self.stats.decode_tokens += 1;
            } else {
                r.prefilled += len;
                self.stats.prefill_tokens += len as u64;
                if r.prefilled == r.generation.spec.prompt.len() {
                    prefix_candidates.push(i);
                }
            }
            if want && let Some(l) = logit {
                let ev = r.generation.accept_logits(tokenizer, l);
                events.push(Event::Token { id: r.id, token: ev });
                if r.generation.finish.is_none() && r.cache.len() + 1 >= self.model.model.context_length {
                    r.generation.end(FinishReason::Length);
                }
            }
        }
        for i in prefix_candidates {
            let r = &self.running[i];
            PrefixStore {
                entries: &mut self.prefixes,
                bytes: &mut self.prefix_bytes,
                clock: &mut self.clock,
                limit: self.config.prefix_cache_bytes,
                min_tokens: self.config.min_prefix_tokens,
                model: &self.model.model.config,
            }
            .store(&r.generation.spec.prompt, &r.cache);
        }
        // Finished sequences leave the batch.
        let mut i = 0;
        while i < self.running.len() {
            if let Some(reason) = self.running[i].generation.finish {
                let r = self.running.swap_remove(i);
                events.push(finished_r(&r, reason, String::new()));
            } else {
                i += 1;
            }
        }
        events
    }
}

fn finished(id: SeqId, reason: FinishReason, tail: String, prompt: usize, completion: usize, cached: usize) -> Event {
    Event::Finished { id, reason, tail, prompt_tokens: prompt, completion_tokens: completion, cached_tokens: cached }
}

fn finished_r(r: &Running, reason: FinishReason, tail: String) -> Event {
    finished(r.id, reason, tail, r.generation.spec.prompt.len(), r.generation.generated.len(), r.cached_tokens)
}

/// The prefix cache's state, borrowed apart from the running sequences so that a sequence's
/// cache is copied once (by [`SeqCache::fork`]) when its prompt is stored.
struct PrefixStore<'a> {
    entries: &'a mut Vec<PrefixEntry>,
    bytes: &'a mut usize,
    clock: &'a mut u64,
    limit: usize,
    min_tokens: usize,
    model: &'a crate::gguf::LlamaConfig,
}

impl PrefixStore<'_> {
    /// Keeps the first `prompt.len()` positions of `cache` (a prompt just prefilled) unless an
    /// entry already covers them; evicts the least recently used entries past the byte limit.
    fn store(self, prompt: &[u32], cache: &SeqCache) {
        let n = prompt.len().min(cache.len());
        if self.limit == 0 || n < self.min_tokens {
            return;
        }
        if self.entries.iter().any(|e| e.tokens.len() >= n && e.tokens[..n] == prompt[..n]) {
            return;
        }
        let Ok(copy) = cache.fork(n) else { return };
        let bytes = copy.bytes(self.model);
        if bytes > self.limit {
            return;
        }
        // Entries that are prefixes of this one add nothing.
        self.entries.retain(|e| !(e.tokens.len() <= n && e.tokens[..] == prompt[..e.tokens.len()]));
        *self.bytes = self.entries.iter().map(|e| e.bytes).sum();
        while *self.bytes + bytes > self.limit && !self.entries.is_empty() {
            let oldest = self.entries.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i).unwrap_or(0);
            let e = self.entries.swap_remove(oldest);
            *self.bytes -= e.bytes;
        }
        *self.clock += 1;
        self.entries.push(PrefixEntry { tokens: prompt[..n].to_vec(), cache: copy, bytes, last_used: *self.clock });
        *self.bytes += bytes;
    }
}
