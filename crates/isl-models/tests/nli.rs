//! NLI: tract against stored onnxruntime probabilities, and accuracy on labelled pairs written
//! for this test (recorded, printed; see the thresholds below).

mod common;

use isl_models::prelude::*;
use isl_models::{NliLabel, NliRequest};

use NliLabel::{Contradiction as C, Entailment as E, Neutral as N};

/// Pairs in the model's domain (non-disclosure agreements, ContractNLI's hypotheses).
const CONTRACT: &[(&str, &str, NliLabel)] = &[
    (
        "The Recipient may disclose Confidential Information to its employees who have a need to know.",
        "Receiving Party may share some Confidential Information with some of Receiving Party's employees.",
        E,
    ),
    (
        "The Receiving Party shall not disclose any Confidential Information to its employees or officers.",
        "Receiving Party may share some Confidential Information with some of Receiving Party's employees.",
        C,
    ),
    (
        "This Agreement shall be governed by the laws of the State of New York.",
        "Receiving Party may share some Confidential Information with some of Receiving Party's employees.",
        N,
    ),
    (
        "Upon termination of this Agreement the Receiving Party shall promptly return or destroy all Confidential Information.",
        "Receiving Party shall destroy or return some Confidential Information upon the termination of Agreement.",
        E,
    ),
    (
        "The Receiving Party is not required to return or destroy any Confidential Information after termination.",
        "Receiving Party shall destroy or return some Confidential Information upon the termination of Agreement.",
        C,
    ),
    (
        "Each party shall bear its own costs in connection with this Agreement.",
        "Receiving Party shall destroy or return some Confidential Information upon the termination of Agreement.",
        N,
    ),
    (
        "The Recipient may disclose Confidential Information to its consultants, agents and professional advisors.",
        "Receiving Party may share some Confidential Information with some third-parties (including consultants, agents and professional advisors).",
        E,
    ),
    (
        "The Recipient shall not disclose Confidential Information to any third party whatsoever.",
        "Receiving Party may share some Confidential Information with some third-parties (including consultants, agents and professional advisors).",
        C,
    ),
    (
        "Notices under this Agreement shall be given in writing to the addresses above.",
        "Receiving Party may share some Confidential Information with some third-parties (including consultants, agents and professional advisors).",
        N,
    ),
    (
        "The obligations of confidentiality shall survive the termination of this Agreement for five years.",
        "Some obligations of Agreement may survive termination of Agreement.",
        E,
    ),
    (
        "All obligations under this Agreement end upon its termination.",
        "Some obligations of Agreement may survive termination of Agreement.",
        C,
    ),
    (
        "The Disclosing Party makes no warranty as to the accuracy of the Confidential Information.",
        "Some obligations of Agreement may survive termination of Agreement.",
        N,
    ),
    (
        "Confidential Information includes information disclosed orally or in writing.",
        "Confidential Information may include verbally conveyed information.",
        E,
    ),
    (
        "Only information disclosed in writing and marked confidential is Confidential Information.",
        "Confidential Information may include verbally conveyed information.",
        C,
    ),
    (
        "This Agreement may be executed in counterparts.",
        "Confidential Information may include verbally conveyed information.",
        N,
    ),
    (
        "Nothing in this Agreement grants the Recipient any license or right to the Confidential Information.",
        "Agreement shall not grant Receiving Party any right to Confidential Information.",
        E,
    ),
    (
        "The Recipient is granted a perpetual license to use the Confidential Information.",
        "Agreement shall not grant Receiving Party any right to Confidential Information.",
        C,
    ),
    (
        "The Recipient shall keep records of the persons to whom it discloses information.",
        "Agreement shall not grant Receiving Party any right to Confidential Information.",
        N,
    ),
];

/// Everyday pairs (outside the model's training domain).
const GENERAL: &[(&str, &str, NliLabel)] = &[
    ("A man is playing a guitar on stage.", "A man is playing an instrument.", E),
    ("A man is playing a guitar on stage.", "Nobody is playing music.", C),
    ("A man is playing a guitar on stage.", "The man is famous.", N),
    ("The cat sleeps on the sofa.", "An animal is resting.", E),
    ("The cat sleeps on the sofa.", "The cat is running in the garden.", C),
    ("The cat sleeps on the sofa.", "The cat is black.", N),
    ("Two children are eating ice cream in the park.", "Kids are outside.", E),
    ("Two children are eating ice cream in the park.", "The children are asleep in bed.", C),
    ("Two children are eating ice cream in the park.", "The children are brothers.", N),
    ("The price of the product was raised to twelve dollars.", "The product costs more now.", E),
    ("The price of the product was raised to twelve dollars.", "The price was lowered.", C),
    ("The price of the product was raised to twelve dollars.", "Sales went down after the change.", N),
    ("A woman is reading a book in the library.", "Someone is reading.", E),
    ("A woman is reading a book in the library.", "The woman is swimming.", C),
    ("A woman is reading a book in the library.", "The book is a novel.", N),
    ("The meeting was cancelled because of the storm.", "The meeting did not take place.", E),
    ("The meeting was cancelled because of the storm.", "The meeting went ahead as planned.", C),
    ("The meeting was cancelled because of the storm.", "The storm damaged several houses.", N),
];

fn accuracy(reg: &Registry, set: &[(&str, &str, NliLabel)]) -> (f64, Vec<NliLabel>) {
    let model = reg.nli(None).unwrap();
    let pairs: Vec<(&str, &str)> = set.iter().map(|(p, h, _)| (*p, *h)).collect();
    let out = model.predict(&pairs, Overflow::Truncate).unwrap();
    for s in &out.scores {
        let sum = s.entailment + s.neutral + s.contradiction;
        assert!((sum - 1.0).abs() < 1e-4 && s.entailment >= 0.0 && s.neutral >= 0.0 && s.contradiction >= 0.0);
    }
    let labels: Vec<NliLabel> = out.scores.iter().map(|s| s.label()).collect();
    let right = labels.iter().zip(set).filter(|(l, (_, _, want))| *l == want).count();
    (right as f64 / set.len() as f64, labels)
}

#[test]
fn nli_matches_the_stored_onnxruntime_probabilities() {
    let Some(reg) = common::registry() else { return };
    let r = common::reference();
    let pairs: Vec<(String, String)> = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
        .collect();
    let got = reg.nli(None).unwrap().predict(&pairs, Overflow::Truncate).unwrap();
    for (g, w) in got.scores.iter().zip(r["nli_scores"].as_array().unwrap()) {
        for (a, b) in
            [(g.entailment, &w["entailment"]), (g.neutral, &w["neutral"]), (g.contradiction, &w["contradiction"])]
        {
            assert!((a as f64 - b.as_f64().unwrap()).abs() < 1e-4, "{g:?} vs {w}");
        }
    }
}

#[test]
fn nli_accuracy_on_labelled_pairs_is_recorded() {
    let Some(reg) = common::registry() else { return };
    let (contract, cl) = accuracy(&reg, CONTRACT);
    let (general, gl) = accuracy(&reg, GENERAL);
    eprintln!(
        "NLI accuracy ({}): contract domain {:.3} ({} pairs), general {:.3} ({} pairs)",
        reg.nli(None).unwrap().name(),
        contract,
        CONTRACT.len(),
        general,
        GENERAL.len()
    );
    eprintln!("contract labels: {cl:?}\ngeneral labels: {gl:?}");
    // Recorded: the best licensed three-label model found is a ContractNLI model, which knows
    // the NDA vocabulary only. It must beat chance (1/3) in its domain; outside it, it mostly
    // says neutral (its vocabulary lacks everyday words), which the thresholds document.
    assert!(contract > 0.4, "contract-domain accuracy {contract}");
    assert!(general >= 0.25, "general accuracy {general}");
}

#[test]
fn the_nli_route_takes_pairs_or_two_lists() {
    let Some(reg) = common::registry() else { return };
    let limits = ModelLimits::default();
    let a: NliRequest =
        serde_json::from_str(r#"{"pairs": [{"premise": "The cat sleeps.", "hypothesis": "The cat is awake."}]}"#)
            .unwrap();
    let b: NliRequest =
        serde_json::from_str(r#"{"premises": ["The cat sleeps."], "hypotheses": ["The cat is awake."]}"#).unwrap();
    let (ra, rb) = (isl_models::api::nli(&reg, &a, &limits).unwrap(), isl_models::api::nli(&reg, &b, &limits).unwrap());
    assert_eq!(ra, rb);
    let json = serde_json::to_value(&ra).unwrap();
    let scores = &json["results"][0]["scores"];
    assert!(scores["entailment"].is_number() && scores["neutral"].is_number() && scores["contradiction"].is_number());
    assert!(["entailment", "neutral", "contradiction"].contains(&json["results"][0]["label"].as_str().unwrap()));
}

#[test]
fn a_batch_size_sweep_reports_every_size_and_recommends_one() {
    let Some(reg) = common::registry() else { return };
    let model = reg.nli(None).unwrap();
    let pairs: Vec<(String, String)> =
        CONTRACT.iter().chain(GENERAL).map(|(p, h, _)| (p.to_string(), h.to_string())).collect();
    let report = isl_models::tune::tune_nli(&model, &pairs, &[1, 8, 32], 2).unwrap();
    assert_eq!(report.rows.iter().map(|r| r.batch_size).collect::<Vec<_>>(), vec![1, 8, 32]);
    assert!([1, 8, 32].contains(&report.recommended));
    assert!(report.rows.iter().all(|r| r.items_per_s > 0.0 && r.latency_ms_p95 >= r.latency_ms_p50));
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    assert_eq!(isl_models::tune::tune_nli(&model, &pairs, &[0], 1).unwrap_err().code(), "invalid_request");
}
