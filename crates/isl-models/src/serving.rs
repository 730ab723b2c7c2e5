//! [`ModelServer`]: the four routes as a server runs them — the [`Registry`], one dynamic
//! [`Batcher`] per loaded embedding and NLI model (so concurrent requests share model calls),
//! the configured [`ModelLimits`] and named evidence corpora embedded at start. Native only.
//!
//! Callers tokenise in their own threads (in parallel) and hand encodings to the batcher, whose
//! workers run the model; each request waits for its own rows, at most until its deadline.
//! `/v1/verify` and `/v1/forecast` are one model pipeline per request already and run directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::Serialize;
use tokenizers::Encoding;

use crate::api::{
    self, EmbedRequest, EmbedResponse, ForecastRequest, ForecastResponse, ModelLimits, NliRequest, NliResponse,
    NliResult, VerifyRequest, VerifyResponse, check_each, check_texts, overflow,
};
use crate::batcher::{Batcher, BatcherConfig, BatcherStats, embedding_batcher, nli_batcher};
use crate::embed::EmbeddingModel;
use crate::error::ModelError;
use crate::manifest::ModelKind;
use crate::nli::{NliModel, NliScores};
use crate::registry::Registry;
use crate::tokenize::Overflow;
use crate::verify::{Corpus, VerifyOptions, verify_with};

type EmbedBatcher = Batcher<Encoding, Vec<f32>>;
type NliBatcher = Batcher<(String, String), NliScores>;

/// Batcher counters of one model, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatcherReport {
    /// The model.
    pub model: String,
    /// Items waiting now.
    pub queued: usize,
    /// Batches run.
    pub batches: u64,
    /// Items run.
    pub items: u64,
    /// Items answered `deadline_exceeded` without running.
    pub expired: u64,
    /// Items refused because the queue was full (429).
    pub rejected: u64,
}

impl BatcherReport {
    fn new(model: &str, s: BatcherStats) -> Self {
        BatcherReport {
            model: model.to_string(),
            queued: s.queued,
            batches: s.batches,
            items: s.items,
            expired: s.expired,
            rejected: s.rejected,
        }
    }
}

/// The model routes of a server: registry, batchers, limits and named corpora. `Send + Sync`;
/// one per server.
pub struct ModelServer {
    registry: Arc<Registry>,
    limits: ModelLimits,
    batching: BatcherConfig,
    embedders: Mutex<HashMap<String, Arc<EmbedBatcher>>>,
    nlis: Mutex<HashMap<String, Arc<NliBatcher>>>,
    corpora: RwLock<HashMap<String, Arc<Corpus>>>,
}

impl std::fmt::Debug for ModelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelServer")
            .field("registry", &self.registry)
            .field("limits", &self.limits)
            .field("batching", &self.batching)
            .field("corpora", &self.corpora())
            .finish()
    }
}

impl ModelServer {
    /// A server over `registry` with `limits`; `batching` is the template of every model's
    /// batcher (its `name` is replaced by the model's).
    pub fn new(registry: Arc<Registry>, limits: ModelLimits, batching: BatcherConfig) -> Self {
        ModelServer {
            registry,
            limits,
            batching,
            embedders: Mutex::new(HashMap::new()),
            nlis: Mutex::new(HashMap::new()),
            corpora: RwLock::new(HashMap::new()),
        }
    }

    /// Embeds `passages` with the default embedding model and keeps them as corpus `name`, for
    /// `/v1/verify` requests that give `"corpus": name` instead of their evidence. A corpus of
    /// the same name is replaced (requests already running keep the one they started with).
    pub fn add_corpus(&self, name: &str, passages: Vec<String>) -> Result<usize, ModelError> {
        check_texts("corpus", &passages, usize::MAX, self.limits.max_text_bytes)?;
        let model = self.registry.embedding(None)?;
        let n = passages.len();
        let corpus = Arc::new(Corpus::embed(&model, passages)?);
        self.corpora.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), corpus);
        Ok(n)
    }

    /// Names and sizes of the loaded corpora.
    pub fn corpora(&self) -> Vec<(String, usize)> {
        let map = self.corpora.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.iter().map(|(k, c)| (k.clone(), c.texts().len())).collect();
        v.sort();
        v
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The limits.
    pub fn limits(&self) -> &ModelLimits {
        &self.limits
    }

    /// The name of the model a request naming `name` (or none) gets, without loading it;
    /// [`ModelError::UnknownModel`] for names the registry does not have.
    pub fn resolve_name(&self, name: Option<&str>, kind: ModelKind) -> Result<String, ModelError> {
        self.registry.resolve_name(name, kind)
    }

    fn config_for(&self, model: &str) -> BatcherConfig {
        BatcherConfig { name: model.to_string(), ..self.batching.clone() }
    }

    fn embed_batcher(&self, model: &Arc<EmbeddingModel>) -> Arc<EmbedBatcher> {
        let mut map = self.embedders.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(model.name().to_string())
            .or_insert_with(|| Arc::new(embedding_batcher(model.clone(), self.config_for(model.name()))))
            .clone()
    }

    fn nli_batcher(&self, model: &Arc<NliModel>) -> Arc<NliBatcher> {
        let mut map = self.nlis.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(model.name().to_string())
            .or_insert_with(|| Arc::new(nli_batcher(model.clone(), self.config_for(model.name()))))
            .clone()
    }

    /// Answers `/v1/embed` through the model's batcher (deadline: the latest the caller waits).
    pub fn embed(&self, req: &EmbedRequest, deadline: Option<Instant>) -> Result<EmbedResponse, ModelError> {
        check_texts("texts", &req.texts, self.limits.max_texts, self.limits.max_text_bytes)?;
        let model = self.registry.embedding(req.model.as_deref())?;
        let mut items = Vec::with_capacity(req.texts.len());
        let mut truncated = Vec::new();
        let mut tokens = 0;
        for (i, text) in req.texts.iter().enumerate() {
            let (enc, cut) = model.tokenizer().encode(text, "texts", i, overflow(req.truncate))?;
            if cut {
                truncated.push(i);
            }
            tokens += enc.len();
            let cost = enc.len();
            items.push((enc, cost));
        }
        let embeddings = self.embed_batcher(&model).call_many(items, deadline)?;
        Ok(EmbedResponse {
            model: model.name().to_string(),
            dimensions: model.dimensions(),
            embeddings,
            truncated,
            tokens,
        })
    }

    /// Answers `/v1/nli` through the model's batcher.
    pub fn nli(&self, req: &NliRequest, deadline: Option<Instant>) -> Result<NliResponse, ModelError> {
        let pairs = api::nli_pairs(req)?;
        if pairs.is_empty() {
            return Err(ModelError::EmptyInput { field: "pairs".into() });
        }
        if pairs.len() > self.limits.max_pairs {
            return Err(ModelError::TooMany {
                field: "pairs".into(),
                count: pairs.len(),
                limit: self.limits.max_pairs,
            });
        }
        check_each("premise", pairs.iter().map(|p| p.0), self.limits.max_text_bytes)?;
        check_each("hypothesis", pairs.iter().map(|p| p.1), self.limits.max_text_bytes)?;
        let model = self.registry.nli(req.model.as_deref())?;
        let tok = model.tokenizer();
        let mut truncated = Vec::new();
        let mut items = Vec::with_capacity(pairs.len());
        for (i, (p, h)) in pairs.iter().enumerate() {
            // Tokenised here (in the caller's thread) to find what is cut, or refuse it; the
            // batch tokenises again with padding, which costs little next to the model.
            let (pe, pcut) = tok.encode(p, "premise", i, overflow(req.truncate))?;
            let (he, hcut) = tok.encode(h, "hypothesis", i, overflow(req.truncate))?;
            if pcut || hcut {
                truncated.push(i);
            }
            let cost = tok.fixed_len().unwrap_or(pe.len().max(he.len()));
            items.push(((p.to_string(), h.to_string()), cost));
        }
        let scores = self.nli_batcher(&model).call_many(items, deadline)?;
        Ok(NliResponse {
            model: model.name().to_string(),
            domain: model.domain().to_string(),
            results: scores.into_iter().map(|scores| NliResult { label: scores.label(), scores }).collect(),
            truncated,
        })
    }

    /// Answers `/v1/verify` (the request's evidence, or a named corpus loaded at start).
    pub fn verify(&self, req: &VerifyRequest, deadline: Option<Instant>) -> Result<VerifyResponse, ModelError> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ModelError::DeadlineExceeded { stage: "queue".into() });
        }
        let corpus = req
            .corpus
            .as_deref()
            .and_then(|name| self.corpora.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned());
        // Through the batchers: the claims, passages and pairs of one request are shared out
        // between the workers (and merged with other requests' rows).
        api::verify_using(&self.registry, req, &self.limits, corpus.as_deref(), |embedder, nli, claims, evidence, k| {
            let embed = |texts: &[String]| self.embed_texts(embedder, texts, deadline);
            let infer = |pairs: &[(&str, &str)]| self.nli_pairs(nli, pairs, deadline);
            verify_with(embedder.name(), &embed, &infer, claims, evidence, k, VerifyOptions::default())
        })
    }

    /// Unit embeddings of `texts` (cut to the model's limit) through the model's batcher.
    fn embed_texts(
        &self,
        model: &Arc<EmbeddingModel>,
        texts: &[String],
        deadline: Option<Instant>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut items = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let (enc, _) = model.tokenizer().encode(text, "texts", i, Overflow::Truncate)?;
            let cost = enc.len();
            items.push((enc, cost));
        }
        self.embed_batcher(model).call_many(items, deadline)
    }

    /// NLI scores of `pairs` (cut to the model's limit) through the model's batcher.
    fn nli_pairs(
        &self,
        model: &Arc<NliModel>,
        pairs: &[(&str, &str)],
        deadline: Option<Instant>,
    ) -> Result<Vec<NliScores>, ModelError> {
        let tok = model.tokenizer();
        let items = pairs
            .iter()
            .map(|(p, h)| {
                let cost = tok.fixed_len().unwrap_or_else(|| tok.count(p).max(tok.count(h)));
                ((p.to_string(), h.to_string()), cost)
            })
            .collect();
        self.nli_batcher(model).call_many(items, deadline)
    }

    /// Answers `/v1/forecast`.
    pub fn forecast(&self, req: &ForecastRequest) -> Result<ForecastResponse, ModelError> {
        api::forecast(&self.registry, req, &self.limits)
    }

    /// Counters of every batcher started so far, by model name.
    pub fn batchers(&self) -> Vec<BatcherReport> {
        let mut out: Vec<BatcherReport> = Vec::new();
        for (name, b) in self.embedders.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push(BatcherReport::new(name, b.stats()));
        }
        for (name, b) in self.nlis.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push(BatcherReport::new(name, b.stats()));
        }
        out.sort_by(|a, b| a.model.cmp(&b.model));
        out
    }
}
