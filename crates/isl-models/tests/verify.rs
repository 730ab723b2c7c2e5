//! Claim verification: retrieval picks the related passages, NLI scores them, the verdict
//! follows; timings per stage; a corpus embedded once gives the same answers.

mod common;

use isl_models::api::{self, ModelLimits, VerifyRequest};
use isl_models::verify::{Corpus, Verdict};
use serde_json::json;

const EVIDENCE: &[&str] = &[
    "The Recipient may disclose Confidential Information to its employees who have a need to know.",
    "Upon termination of this Agreement the Receiving Party shall promptly return or destroy all Confidential Information.",
    "This Agreement shall be governed by the laws of the State of New York.",
    "The obligations of confidentiality shall survive the termination of this Agreement for five years.",
    "Each party shall bear its own costs in connection with this Agreement.",
    "Notices under this Agreement shall be given in writing.",
    "The quarterly revenue grew by twelve percent.",
    "The cat sleeps on the sofa.",
    "Paris is the capital of France.",
    "The meeting was cancelled because of the storm.",
];

#[test]
fn verify_retrieves_scores_and_decides() {
    let Some(reg) = common::registry() else { return };
    let req: VerifyRequest = serde_json::from_value(json!({
        "claims": [
            "Receiving Party may share some Confidential Information with some of Receiving Party's employees.",
            "Receiving Party shall destroy or return some Confidential Information upon the termination of Agreement.",
            "Some obligations of Agreement may survive termination of Agreement.",
            "The capital of France is Paris.",
            "The storm cancelled the meeting.",
        ],
        "evidence": EVIDENCE,
        "top_k": 3,
    }))
    .unwrap();
    let resp = api::verify(&reg, &req, &ModelLimits::default(), None).unwrap();
    assert_eq!(resp.results.len(), 5);
    for r in &resp.results {
        assert_eq!(r.evidence.len(), 3);
        assert!(r.evidence.windows(2).all(|w| w[0].similarity >= w[1].similarity));
        assert!((0.0..=1.0).contains(&r.confidence));
    }
    // Retrieval: each claim's best passage is the one it is about.
    let best: Vec<usize> = resp.results.iter().map(|r| r.evidence[0].index).collect();
    assert_eq!(best, vec![0, 1, 3, 8, 9]);
    // The model's domain: the first three are supported by their passage.
    let verdicts: Vec<Verdict> = resp.results.iter().map(|r| r.verdict).collect();
    eprintln!("verdicts: {verdicts:?}\ntimings (ms): {:?}", resp.timings_ms);
    assert_eq!(verdicts[..3], [Verdict::Supported; 3]);
    let json = serde_json::to_value(&resp).unwrap();
    for key in ["embed", "retrieve", "nli", "aggregate", "total"] {
        assert!(json["timings_ms"][key].is_number(), "{key}");
    }
    let e0 = &json["results"][0]["evidence"][0];
    for key in ["text", "similarity", "label", "scores"] {
        assert!(!e0[key].is_null(), "{key}");
    }
    assert_eq!(json["results"][0]["verdict"], "supported");

    // The same claims against a corpus embedded once.
    let embedder = reg.embedding(None).unwrap();
    let corpus = Corpus::embed(&embedder, EVIDENCE.iter().map(|s| s.to_string()).collect()).unwrap();
    let mut by_name = req.clone();
    by_name.evidence.clear();
    by_name.corpus = Some("nda".into());
    let again = api::verify(&reg, &by_name, &ModelLimits::default(), Some(&corpus)).unwrap();
    for (a, b) in again.results.iter().zip(&resp.results) {
        assert_eq!(
            (a.verdict, a.evidence.iter().map(|e| e.index).collect::<Vec<_>>()),
            (b.verdict, b.evidence.iter().map(|e| e.index).collect())
        );
    }
    // top_k larger than the corpus keeps every passage.
    let mut all = req.clone();
    all.top_k = Some(20);
    assert_eq!(
        api::verify(&reg, &all, &ModelLimits::default(), None).unwrap().results[0].evidence.len(),
        EVIDENCE.len()
    );
}

/// The server's verification (through the batchers, rows shared out between workers and padded
/// with other rows) gives the library's answer: same passages, labels and verdicts, the same
/// numbers up to float rounding.
#[test]
fn the_batched_server_path_answers_like_the_library() {
    let Some(reg) = common::registry() else { return };
    let req: VerifyRequest = serde_json::from_value(json!({
        "claims": ["Confidential Information must be returned at termination.", "Revenue fell."],
        "evidence": EVIDENCE,
        "top_k": 3,
    }))
    .unwrap();
    let direct = api::verify(&reg, &req, &ModelLimits::default(), None).unwrap();
    let batching = isl_models::BatcherConfig { workers: 2, ..Default::default() };
    let server = isl_models::ModelServer::new(reg.clone(), ModelLimits::default(), batching);
    let served = server.verify(&req, None).unwrap();
    assert_eq!(direct.results.len(), served.results.len());
    for (d, s) in direct.results.iter().zip(&served.results) {
        assert_eq!((d.verdict, &d.claim), (s.verdict, &s.claim));
        assert!((d.confidence - s.confidence).abs() < 1e-4, "{} vs {}", d.confidence, s.confidence);
        for (de, se) in d.evidence.iter().zip(&s.evidence) {
            assert_eq!((de.index, de.label), (se.index, se.label));
            assert!((de.similarity - se.similarity).abs() < 1e-4);
            assert!((de.scores.entailment - se.scores.entailment).abs() < 1e-4);
        }
    }
    let stats = server.batchers();
    assert_eq!(stats.len(), 2, "{stats:?}");
    assert_eq!(stats.iter().map(|b| b.items).sum::<u64>(), 2 + 10 + 6);
}
