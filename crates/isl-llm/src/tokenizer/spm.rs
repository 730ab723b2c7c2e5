//! SentencePiece BPE the way llama.cpp runs it for `tokenizer.ggml.model = llama` (Llama 1/2,
//! TinyLlama, Mistral, Phi-3): spaces become `▁` (U+2581), a `▁` goes in front of the text
//! when the vocabulary asks for it, the text starts as one symbol per character, and the
//! adjacent pair whose merged text is the highest-scoring token is merged first (ties: the
//! leftmost), until no merged pair is a token. A symbol left that is not a token is written as
//! its bytes (`<0xXX>` tokens).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::error::{LlmError, Result};

/// The space marker of SentencePiece vocabularies.
pub(crate) const SPACE: char = '\u{2581}';

/// The encoder's tables. Invariant: every id it holds is below the vocabulary size.
pub(crate) struct SpmEncoder {
    ids: HashMap<String, u32>,
    scores: Vec<f32>,
    byte_ids: [Option<u32>; 256],
    unk: Option<u32>,
    /// Whether a `▁` is put in front of the text (and in front of text after a special token).
    pub(crate) add_space_prefix: bool,
}

/// A pair of adjacent symbols whose merged text is a token, ordered so that the heap's top is
/// the highest score, then the leftmost pair.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}

/// One symbol of the text being merged: a byte range, and its neighbours in the chain.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl SpmEncoder {
    /// The tables of a vocabulary: its tokens' texts and scores, and the id of `<unk>`.
    pub(crate) fn new(tokens: &[&str], scores: Vec<f32>, unk: Option<u32>, add_space_prefix: bool) -> Result<Self> {
        if scores.len() != tokens.len() {
            return Err(LlmError::Tokenizer(format!(
                "{} tokens but {} scores (tokenizer.ggml.scores)",
                tokens.len(),
                scores.len()
            )));
        }
        // As llama.cpp: a text that appears twice maps to its last id.
        let ids: HashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
        let mut byte_ids = [None; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            *slot = ids.get(&hex).copied().or_else(|| {
                let byte = [b as u8];
                std::str::from_utf8(&byte).ok().and_then(|s| ids.get(s).copied())
            });
        }
        Ok(SpmEncoder { ids, scores, byte_ids, unk, add_space_prefix })
    }

    /// The id of a token given as its exact text.
    pub(crate) fn token_id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// Appends the tokens of one piece of raw text (no special tokens in it) to `out`;
    /// `prefix` puts a space in front first (llama.cpp does so at the start of the text and
    /// after a special token).
    pub(crate) fn encode_text(&self, raw: &str, prefix: bool, out: &mut Vec<u32>) -> Result<()> {
        let mut text = String::with_capacity(raw.len() + 3);
        if prefix && self.add_space_prefix {
            text.push(SPACE);
        }
        for c in raw.chars() {
            text.push(if c == ' ' { SPACE } else { c });
        }
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            let len = c.len_utf8();
            symbols.push(Symbol {
                start,
                len,
                prev: i.checked_sub(1),
                next: if start + len == text.len() { None } else { Some(i + 1) },
            });
        }
        let mut heap = BinaryHeap::new();
        let bigram = |symbols: &[Symbol], left: Option<usize>, right: Option<usize>| -> Option<Bigram> {
            let (l, r) = (left?, right?);
            let (a, b) = (symbols[l], symbols[r]);
            let merged = &text[a.start..a.start + a.len + b.len];
            let id = self.ids.get(merged)?;
            Some(Bigram { score: self.scores[*id as usize], left: l, right: r, size: merged.len() })
        };
        for i in 1..symbols.len() {
            heap.extend(bigram(&symbols, Some(i - 1), Some(i)));
        }
        while let Some(top) = heap.pop() {
            let (l, r) = (symbols[top.left], symbols[top.right]);
            // A pair one of whose symbols has since been merged into another is stale.
            if l.len == 0 || r.len == 0 || l.len + r.len != top.size {
                continue;
            }
            symbols[top.left].len += r.len;
            symbols[top.right].len = 0;
            symbols[top.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(top.left);
            }
            let left = symbols[top.left];
            heap.extend(bigram(&symbols, left.prev, Some(top.left)));
            heap.extend(bigram(&symbols, Some(top.left), left.next));
        }
        let mut at = if symbols.is_empty() { None } else { Some(0) };
        while let Some(i) = at {
            let s = symbols[i];
            let piece = &text[s.start..s.start + s.len];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        let id = self.byte_ids[b as usize].or(self.unk).ok_or_else(|| {
                            LlmError::Tokenizer(format!("byte 0x{b:02X} has no token and there is no <unk>"))
                        })?;
                        out.push(id);
                    }
                }
            }
            at = s.next;
        }
        Ok(())
    }
}

/// A piece of text to encode: raw text, or a special token found in it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    /// Text with no special token in it.
    Text(&'a str),
    /// A special token written in the text.
    Token(u32),
}

/// Splits `text` at every occurrence of the special tokens, as llama.cpp's
/// `tokenizer_st_partition`: `specials` longest first, each one splitting the raw pieces the
/// longer ones left, left to right.
pub(crate) fn split_specials<'a>(text: &'a str, specials: &[(String, u32)]) -> Vec<Fragment<'a>> {
    let mut parts = vec![Fragment::Text(text)];
    for (special, id) in specials {
        if special.is_empty() {
            continue;
        }
        let mut next = Vec::with_capacity(parts.len());
        for part in parts {
            let Fragment::Text(mut rest) = part else {
                next.push(part);
                continue;
            };
            while let Some(at) = rest.find(special.as_str()) {
                if at > 0 {
                    next.push(Fragment::Text(&rest[..at]));
                }
                next.push(Fragment::Token(*id));
                rest = &rest[at + special.len()..];
            }
            if !rest.is_empty() {
                next.push(Fragment::Text(rest));
            }
        }
        parts = next;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(tokens: &[(&str, f32)]) -> SpmEncoder {
        let texts: Vec<&str> = tokens.iter().map(|t| t.0).collect();
        SpmEncoder::new(&texts, tokens.iter().map(|t| t.1).collect(), Some(0), true).expect("encoder")
    }

    #[test]
    fn the_highest_scoring_pair_merges_first() {
        // "abc": "ab" (score 1) against "bc" (score 2): "bc" wins, then "a" stays alone.
        let e = encoder(&[("<unk>", 0.0), ("a", 0.0), ("b", 0.0), ("c", 0.0), ("ab", 1.0), ("bc", 2.0), ("▁", 0.0)]);
        let mut out = Vec::new();
        e.encode_text("abc", false, &mut out).expect("encode");
        assert_eq!(out, vec![1, 5]);
        out.clear();
        e.encode_text("abc", true, &mut out).expect("encode");
        assert_eq!(out, vec![6, 1, 5]);
    }

    #[test]
    fn unknown_characters_fall_back_to_byte_tokens() {
        let mut tokens = vec![("<unk>", 0.0), ("▁", 0.0)];
        let bytes: Vec<String> = (0..256).map(|b| format!("<0x{b:02X}>")).collect();
        tokens.extend(bytes.iter().map(|b| (b.as_str(), 0.0)));
        let e = encoder(&tokens);
        let mut out = Vec::new();
        e.encode_text("é", false, &mut out).expect("encode");
        assert_eq!(out, vec![2 + 0xC3, 2 + 0xA9]);
    }

    #[test]
    fn specials_split_the_text_longest_first() {
        let specials = vec![("</s>".to_string(), 2), ("<s>".to_string(), 1)];
        let got = split_specials("a</s><s>b<s>", &specials);
        assert_eq!(
            got,
            vec![Fragment::Text("a"), Fragment::Token(2), Fragment::Token(1), Fragment::Text("b"), Fragment::Token(1)]
        );
    }
}
