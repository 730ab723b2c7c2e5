//! Generation semantics on the real default model: the scheduler's continuous batching gives
//! each sequence exactly the tokens it gets alone, seeded sampling repeats, stop strings and
//! max_tokens end exactly, a cancelled sequence leaves the batch, the queue refuses past its
//! bound, and a shared prefix is taken from the prefix cache.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use isl_llm::SeqId;
use isl_llm::prelude::*;

fn spec(model: &LanguageModel, user: &str, max_tokens: usize, sampling: SamplingParams) -> GenerationSpec {
    GenerationSpec {
        prompt: model.chat_prompt(&[ChatMessage { role: "user".into(), content: user.into() }]).expect("prompt"),
        max_tokens,
        sampling,
        stop: vec![],
        logprobs: false,
        top_logprobs: 0,
        stop_at_eos: true,
    }
}

/// Runs the scheduler to the end; returns per sequence its tokens, text and finish reason.
fn run_all(s: &mut Scheduler) -> HashMap<SeqId, (Vec<u32>, String, FinishReason)> {
    let mut out: HashMap<SeqId, (Vec<u32>, String, FinishReason)> = HashMap::new();
    let mut steps = 0;
    while !s.is_idle() {
        steps += 1;
        assert!(steps < 10_000, "the scheduler does not finish");
        for ev in s.step() {
            match ev {
                Event::Token { id, token } => {
                    let e = out.entry(id).or_insert((Vec::new(), String::new(), FinishReason::Stop));
                    e.0.push(token.id);
                    e.1.push_str(&token.text);
                }
                Event::Finished { id, reason, tail, .. } => {
                    let e = out.entry(id).or_insert((Vec::new(), String::new(), FinishReason::Stop));
                    e.1.push_str(&tail);
                    e.2 = reason;
                }
                Event::Failed { error, .. } => panic!("{error}"),
            }
        }
    }
    out
}

#[test]
fn continuous_batching_gives_each_sequence_its_solo_tokens() {
    let model = common::model();
    let users = ["What is 2 + 2?", "Name a colour.", "Write a haiku about the sea.", "Why is the sky blue?", "Hi"];
    let seeded = |i: usize| SamplingParams { temperature: 0.8, top_p: 0.9, seed: 7 + i as u64, ..Default::default() };
    let specs: Vec<GenerationSpec> = users
        .iter()
        .enumerate()
        .map(|(i, u)| spec(&model, u, 12 + 3 * i, if i % 2 == 0 { SamplingParams::greedy() } else { seeded(i) }))
        .collect();
    let solo: Vec<_> = specs.iter().map(|s| model.generate(s.clone()).expect("generate")).collect();
    // A small token budget forces chunked prefill alongside running decodes.
    let mut s = Scheduler::new(model.clone(), SchedulerConfig { max_batch: 3, step_tokens: 24, ..Default::default() });
    let ids: Vec<SeqId> = specs.iter().map(|sp| s.submit(sp.clone(), None).expect("queued")).collect();
    let out = run_all(&mut s);
    for (i, id) in ids.iter().enumerate() {
        let (tokens, text, reason) = &out[id];
        assert_eq!(tokens, &solo[i].tokens, "sequence {i}");
        assert_eq!(text, &solo[i].text, "sequence {i}");
        assert_eq!(*reason, solo[i].finish, "sequence {i}");
    }
}

#[test]
fn a_seed_repeats_its_text_and_another_seed_differs() {
    let model = common::model();
    let p = |seed| SamplingParams { temperature: 1.0, seed, ..Default::default() };
    let a = model.generate(spec(&model, "Tell me a story.", 24, p(1))).expect("a");
    let b = model.generate(spec(&model, "Tell me a story.", 24, p(1))).expect("b");
    let c = model.generate(spec(&model, "Tell me a story.", 24, p(2))).expect("c");
    assert_eq!(a.tokens, b.tokens);
    assert_ne!(a.tokens, c.tokens);
}

#[test]
fn max_tokens_and_stop_strings_end_exactly() {
    let model = common::model();
    let mut sp = spec(&model, "Count from one to twenty in words, separated by commas.", 7, SamplingParams::greedy());
    sp.stop_at_eos = false;
    let out = model.generate(sp.clone()).expect("generate");
    assert_eq!(out.tokens.len(), 7);
    assert_eq!(out.finish, FinishReason::Length);
    // Stop at the first comma: the text is everything before it.
    let long = model.generate(GenerationSpec { max_tokens: 40, ..sp.clone() }).expect("long");
    let comma = long.text.find(',').expect("the answer has a comma");
    let stopped = model.generate(GenerationSpec { max_tokens: 40, stop: vec![",".into()], ..sp }).expect("stopped");
    assert_eq!(stopped.text, long.text[..comma]);
    assert_eq!(stopped.finish, FinishReason::Stop);
}

#[test]
fn cancelling_frees_the_sequence_and_the_queue_is_bounded() {
    let model = common::model();
    let mut s = Scheduler::new(model.clone(), SchedulerConfig { max_batch: 2, max_queue: 3, ..Default::default() });
    let sp = spec(&model, "Hello", 50, SamplingParams::greedy());
    let a = s.submit(sp.clone(), None).expect("a");
    let _b = s.submit(sp.clone(), None).expect("b");
    let _c = s.submit(sp.clone(), None).expect("c");
    assert!(s.submit(sp.clone(), None).is_err(), "a fourth waiting sequence is refused");
    s.step();
    assert_eq!(s.running(), 2);
    assert!(s.kv_tokens() > 0);
    let before = s.kv_tokens();
    assert!(s.cancel(a));
    assert!(s.kv_tokens() < before);
    assert_eq!(s.stats.cancelled, 1);
}

#[test]
fn a_shared_system_prompt_comes_from_the_prefix_cache_with_the_same_tokens() {
    let model: Arc<LanguageModel> = common::model();
    let system = "You are a careful assistant who answers in one short sentence about geography and history.";
    let chat = |u: &str| {
        model
            .chat_prompt(&[
                ChatMessage { role: "system".into(), content: system.into() },
                ChatMessage { role: "user".into(), content: u.into() },
            ])
            .expect("prompt")
    };
    let mk = |u: &str| GenerationSpec { prompt: chat(u), ..spec(&model, u, 10, SamplingParams::greedy()) };
    let mut s = Scheduler::new(model.clone(), SchedulerConfig::default());
    let first = s.submit(mk("What is the capital of Italy?"), None).expect("first");
    let out1 = run_all(&mut s);
    let second_spec = mk("What is the capital of Spain?");
    let solo = model.generate(second_spec.clone()).expect("solo");
    let second = s.submit(second_spec, None).expect("second");
    let out2 = run_all(&mut s);
    assert!(out1.contains_key(&first));
    assert!(s.stats.prefix_hit_tokens >= 20, "prefix hits: {}", s.stats.prefix_hit_tokens);
    assert_eq!(out2[&second].0, solo.tokens);
}
