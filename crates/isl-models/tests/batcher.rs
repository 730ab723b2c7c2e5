//! The dynamic batcher: many concurrent callers of different lengths each get their own result;
//! batches respect the size and token budget; a full queue answers at once; deadlines hold.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use isl_models::prelude::*;
use isl_models::{Batcher, BatcherConfig, embedding_batcher};

#[test]
fn concurrent_callers_of_different_lengths_each_get_their_own_result() {
    let seen: Arc<Mutex<Vec<Vec<usize>>>> = Arc::default();
    let log = seen.clone();
    let cfg = BatcherConfig {
        name: "fake".into(),
        max_batch: 8,
        max_delay: Duration::from_millis(5),
        token_budget: 200,
        queue_capacity: 1000,
        workers: 2,
    };
    let batcher = Arc::new(Batcher::new(cfg, move |items: Vec<(usize, usize)>| {
        log.lock().unwrap().push(items.iter().map(|i| i.1).collect());
        std::thread::sleep(Duration::from_millis(1));
        Ok(items.iter().map(|(id, len)| format!("{id}:{len}")).collect())
    }));
    let callers = 96;
    let start = Arc::new(Barrier::new(callers));
    let handles: Vec<_> = (0..callers)
        .map(|id| {
            let (b, start) = (batcher.clone(), start.clone());
            std::thread::spawn(move || {
                let len = 1 + (id * 37) % 60;
                start.wait();
                let out = b.call((id, len), len, Some(Instant::now() + Duration::from_secs(10))).unwrap();
                assert_eq!(out, format!("{id}:{len}"));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let batches = seen.lock().unwrap();
    let items: usize = batches.iter().map(|b| b.len()).sum();
    assert_eq!(items, callers);
    assert!(batches.len() < callers, "no batch merged two requests");
    for b in batches.iter() {
        assert!(b.len() <= 8);
        if b.len() > 1 {
            assert!(b.len() * b.iter().max().unwrap() <= 200, "over the token budget: {b:?}");
        }
    }
    let stats = batcher.stats();
    assert_eq!((stats.items, stats.batches, stats.queued), (callers as u64, batches.len() as u64, 0));
    eprintln!("{callers} callers in {} batches, mean size {:.1}", batches.len(), callers as f64 / batches.len() as f64);
}

#[test]
fn a_full_queue_answers_overloaded_at_once_and_deadlines_hold() {
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let cfg = BatcherConfig { max_batch: 1, max_delay: Duration::ZERO, queue_capacity: 2, ..Default::default() };
    let b = Batcher::new(cfg, move |items: Vec<u32>| {
        if r.fetch_add(1, Ordering::SeqCst) == 0 {
            g.wait(); // the first batch blocks until the test lets it go
        }
        Ok(items)
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let t1 = tx.clone();
    b.submit(1, 1, None, move |r| t1.send(r).unwrap()).unwrap();
    while b.stats().queued > 0 {
        std::thread::yield_now(); // the worker has taken item 1 and is blocked
    }
    let t2 = tx.clone();
    b.submit(2, 1, None, move |r| t2.send(r).unwrap()).unwrap();
    // Item 3's deadline passes while it waits: answered without running.
    let t3 = tx.clone();
    b.submit(3, 1, Some(Instant::now()), move |r| t3.send(r).unwrap()).unwrap();
    let e = b.submit(4, 1, None, |_| {}).unwrap_err();
    assert_eq!((e.code(), e.class()), ("overloaded", ErrorClass::Overloaded));
    // A caller waiting with a deadline stops waiting at it.
    let e = b.call(5, 1, Some(Instant::now() + Duration::from_millis(20)));
    assert_eq!(e.unwrap_err().code(), "overloaded"); // still full: refused at once
    gate.wait();
    let mut got: Vec<Result<u32, String>> =
        (0..3).map(|_| rx.recv().unwrap().map_err(|e| e.code().to_string())).collect();
    got.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(got, vec![Err("deadline_exceeded".to_string()), Ok(1), Ok(2)]);
    assert_eq!(b.stats().expired, 1);
    assert_eq!(b.stats().rejected, 2);
    let e = b.call(6, 1, Some(Instant::now() + Duration::from_secs(5))).unwrap();
    assert_eq!(e, 6);
}

#[test]
fn a_panicking_or_failing_batch_answers_every_caller_with_an_error() {
    let b: Batcher<i32, i32> = Batcher::new(BatcherConfig::default(), |items: Vec<i32>| {
        if items.contains(&-1) {
            panic!("boom");
        }
        Err(isl_models::ModelError::InvalidRequest { message: "no".into() })
    });
    assert_eq!(b.call(-1, 1, None).unwrap_err().code(), "inference_failed");
    assert_eq!(b.call(1, 1, None).unwrap_err().code(), "invalid_request");
}

#[test]
fn batched_embeddings_equal_unbatched_ones() {
    let Some(reg) = common::registry() else { return };
    let model = reg.embedding(None).unwrap();
    let batcher = Arc::new(embedding_batcher(
        model.clone(),
        BatcherConfig {
            name: model.name().into(),
            max_batch: 16,
            max_delay: Duration::from_millis(3),
            token_budget: 16 * 64,
            ..Default::default()
        },
    ));
    let texts: Vec<String> =
        (0..40).map(|i| format!("Text number {i}: {}", "and more words ".repeat(i % 13))).collect();
    let handles: Vec<_> = texts
        .iter()
        .cloned()
        .map(|t| {
            let (b, m) = (batcher.clone(), model.clone());
            std::thread::spawn(move || {
                let (enc, _) = m.tokenizer().encode(&t, "texts", 0, Overflow::Truncate).unwrap();
                let cost = enc.len();
                b.call(enc, cost, None).unwrap()
            })
        })
        .collect();
    let got: Vec<Vec<f32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (t, g) in texts.iter().zip(&got) {
        let want = model.embed(&[t], Overflow::Truncate).unwrap().vectors.remove(0);
        assert!(common::cosine(g, &want) > 0.99999, "{t}");
    }
    let s = batcher.stats();
    eprintln!("40 concurrent texts in {} batches", s.batches);
    assert!(s.batches < 40);
}
