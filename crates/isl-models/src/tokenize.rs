//! Tokenisation with Hugging Face `tokenizers`: truncation to the model's limit (reported),
//! padding to the longest sequence of the batch (not the file's fixed padding).

use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

use crate::error::ModelError;

/// What to do with a text longer than the model's token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Cut it to the limit and report its index in `truncated`.
    #[default]
    Truncate,
    /// Refuse the request ([`ModelError::TextTooLong`]).
    Reject,
}

/// A tokeniser with the model's limits.
#[derive(Clone)]
pub struct TextTokenizer {
    model: String,
    /// Truncates to `max_tokens`, no padding.
    cut: Tokenizer,
    /// No truncation: counts the tokens of a text that overflowed, for the error.
    whole: Tokenizer,
    max_tokens: usize,
    /// Fixed length every sequence is padded to (models trained on fixed lengths), if any.
    fixed_len: Option<usize>,
    pad_id: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("model", &self.model).field("max_tokens", &self.max_tokens).finish()
    }
}

/// Token ids of a batch, padded to one length, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    /// Rows.
    pub batch: usize,
    /// Columns (the longest row, or the model's fixed length).
    pub seq: usize,
    /// Token ids.
    pub ids: Vec<i64>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<i64>,
    /// Segment ids (0 for single texts).
    pub type_ids: Vec<i64>,
    /// Real tokens in each row.
    pub lengths: Vec<usize>,
    /// Whether each row was truncated.
    pub truncated: Vec<bool>,
}

impl TextTokenizer {
    /// A tokeniser from `tokenizer.json` bytes. Padding and truncation settings in the file
    /// are replaced: truncation to `max_tokens`; rows padded to the longest of their batch,
    /// or to `fixed_len` for models trained on one sequence length.
    pub fn from_bytes(
        model: &str,
        bytes: &[u8],
        max_tokens: usize,
        fixed_len: Option<usize>,
    ) -> Result<Self, ModelError> {
        let mut whole = Tokenizer::from_bytes(bytes).map_err(|e| ModelError::load(model, e))?;
        let pad_id = match whole.get_padding() {
            Some(p) => p.pad_id,
            None => whole.token_to_id("[PAD]").unwrap_or(0),
        };
        whole.with_padding(None);
        whole.with_truncation(None).map_err(|e| ModelError::load(model, e))?;
        let mut cut = whole.clone();
        cut.with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            ..Default::default()
        }))
        .map_err(|e| ModelError::load(model, e))?;
        Ok(TextTokenizer { model: model.to_string(), cut, whole, max_tokens, fixed_len, pad_id })
    }

    /// The model's token limit.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The fixed sequence length, for models trained on one.
    pub fn fixed_len(&self) -> Option<usize> {
        self.fixed_len
    }

    /// Encodes one text (truncated to the limit) and says whether it was cut.
    pub fn encode(
        &self,
        text: &str,
        field: &str,
        index: usize,
        overflow: Overflow,
    ) -> Result<(Encoding, bool), ModelError> {
        let enc = self.cut.encode(text, true).map_err(|e| ModelError::inference(&self.model, e))?;
        let truncated = !enc.get_overflowing().is_empty();
        if truncated && overflow == Overflow::Reject {
            let tokens = self.whole.encode(text, true).map(|e| e.len()).unwrap_or(self.max_tokens + 1);
            return Err(ModelError::TextTooLong {
                field: field.to_string(),
                index,
                tokens,
                limit: self.max_tokens,
                model: self.model.clone(),
            });
        }
        Ok((enc, truncated))
    }

    /// Number of tokens `text` takes after truncation (the batcher's cost).
    pub fn count(&self, text: &str) -> usize {
        self.cut.encode(text, true).map(|e| e.len()).unwrap_or(self.max_tokens)
    }

    /// Encodes and pads a batch. `index_base` offsets the indices in errors.
    pub fn encode_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
        field: &str,
        index_base: usize,
        overflow: Overflow,
    ) -> Result<EncodedBatch, ModelError> {
        let mut encs = Vec::with_capacity(texts.len());
        let mut truncated = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            let (enc, cut) = self.encode(t.as_ref(), field, index_base + i, overflow)?;
            encs.push(enc);
            truncated.push(cut);
        }
        Ok(self.pad(&encs, truncated))
    }

    /// Pads encodings to one length (the longest, or the fixed length).
    pub fn pad(&self, encs: &[Encoding], truncated: Vec<bool>) -> EncodedBatch {
        let longest = encs.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let seq = self.fixed_len.unwrap_or(longest).max(1);
        let batch = encs.len();
        let mut ids = vec![self.pad_id as i64; batch * seq];
        let mut mask = vec![0i64; batch * seq];
        let mut type_ids = vec![0i64; batch * seq];
        let mut lengths = Vec::with_capacity(batch);
        for (r, e) in encs.iter().enumerate() {
            let n = e.len().min(seq);
            let row = r * seq;
            for (j, ((&id, &ty), &m)) in
                e.get_ids().iter().zip(e.get_type_ids()).zip(e.get_attention_mask()).take(n).enumerate()
            {
                ids[row + j] = id as i64;
                type_ids[row + j] = ty as i64;
                mask[row + j] = m as i64;
            }
            lengths.push(n);
        }
        EncodedBatch { batch, seq, ids, mask, type_ids, lengths, truncated }
    }
}
