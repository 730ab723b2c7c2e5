//! Graphs from the literature with answers known from their sources.

use isl_causal::prelude::*;
use isl_causal::{Identification, NodeNames};
use serde_json::json;

fn identify(dag: serde_json::Value, x: &str, y: &str) -> Identification {
    let opts = CausalOptions::default();
    let req: ValidateRequest = serde_json::from_value(json!({"dag": dag, "treatment": x, "outcome": y})).unwrap();
    validate(&req.canonical(&opts), &opts, &|| false).unwrap().identification.unwrap()
}

fn sets(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter().map(|s| s.iter().map(|n| n.to_string()).collect()).collect()
}

fn check(dag: serde_json::Value, x: &str, y: &str, z: &[&str]) -> CriterionResponse {
    let req: BackdoorRequest =
        serde_json::from_value(json!({"dag": dag, "treatment": x, "outcome": y, "adjustment": z})).unwrap();
    backdoor(&req.canonical(), &CausalOptions::default(), &|| false).unwrap()
}

use isl_causal::{BackdoorRequest, CriterionResponse};

#[test]
fn m_bias_needs_no_adjustment_and_conditioning_on_the_collider_opens_a_path() {
    // X <- A -> M <- B -> Y, X -> Y (Greenland, Pearl & Robins 1999).
    let dag = json!({"edges": [["A","X"],["A","M"],["B","M"],["B","Y"],["X","Y"]]});
    let id = identify(dag.clone(), "X", "Y");
    assert_eq!(id.backdoor_sets, sets(&[&[]]));
    assert_eq!(id.strategy.as_deref(), Some("backdoor"));
    let bad = check(dag.clone(), "X", "Y", &["M"]);
    assert!(!bad.valid);
    assert_eq!(bad.path, Some(sets(&[&["X", "A", "M", "B", "Y"]])[0].clone()));
    assert!(bad.reason.contains("X <- A -> M <- B -> Y"), "{}", bad.reason);
    assert!(check(dag.clone(), "X", "Y", &["M", "A"]).valid);
    assert!(check(dag, "X", "Y", &[]).valid);
}

#[test]
fn butterfly_needs_the_collider_and_one_of_its_parents() {
    // A -> X, A -> M, B -> M, B -> Y, M -> X, M -> Y, X -> Y (the "butterfly" / bow-tie bias).
    let dag = json!({"edges": [["A","X"],["A","M"],["B","M"],["B","Y"],["M","X"],["M","Y"],["X","Y"]]});
    let id = identify(dag, "X", "Y");
    assert_eq!(id.backdoor_sets, sets(&[&["A", "M"], &["B", "M"]]));
}

#[test]
fn pearl_1995_figure() {
    // Pearl (1995, Biometrika) Fig. 2 style: Z1 -> Z3 <- Z2, Z1 -> X, Z2 -> Y, Z3 -> X, Z3 -> Y,
    // X -> W -> Y. W descends from X and is never allowed.
    let dag =
        json!({"edges": [["Z1","Z3"],["Z2","Z3"],["Z1","X"],["Z2","Y"],["Z3","X"],["Z3","Y"],["X","W"],["W","Y"]]});
    let id = identify(dag.clone(), "X", "Y");
    assert_eq!(id.backdoor_sets, sets(&[&["Z1", "Z3"], &["Z2", "Z3"]]));
    let with_w = check(dag, "X", "Y", &["Z1", "Z3", "W"]);
    assert!(!with_w.valid);
    assert_eq!(with_w.offending, vec!["W".to_string()]);
}

#[test]
fn front_door_graph() {
    // U -> X, U -> Y (U latent), X -> M -> Y: no back-door set, {M} is a front-door set.
    let dag = json!({"edges": [["U","X"],["U","Y"],["X","M"],["M","Y"]], "latent": ["U"]});
    let id = identify(dag.clone(), "X", "Y");
    assert!(id.backdoor_sets.is_empty());
    assert_eq!(id.frontdoor_sets, sets(&[&["M"]]));
    assert_eq!(id.strategy.as_deref(), Some("frontdoor"));
    assert!(id.identifiable);
    let req: isl_causal::FrontdoorRequest =
        serde_json::from_value(json!({"dag": dag, "treatment": "X", "outcome": "Y", "mediators": ["M"]})).unwrap();
    assert!(frontdoor(&req.canonical(), &CausalOptions::default(), &|| false).unwrap().valid);
}

#[test]
fn instrumental_variable_graph() {
    // Z -> X -> Y, U -> X, U -> Y (U latent): Z is an instrument; nothing else identifies.
    let dag = json!({"edges": [["Z","X"],["X","Y"],["U","X"],["U","Y"]], "latent": ["U"]});
    let id = identify(dag, "X", "Y");
    assert_eq!(id.instruments, vec!["Z".to_string()]);
    assert!(id.backdoor_sets.is_empty());
    assert!(id.frontdoor_sets.is_empty());
    assert!(!id.identifiable);
    assert_eq!(id.strategy, None);
}

#[test]
fn set_valued_treatment_and_outcome() {
    // C confounds both treatments and both outcomes.
    let dag = json!({"edges": [["C","X1"],["C","X2"],["C","Y1"],["C","Y2"],["X1","Y1"],["X2","Y2"]]});
    let opts = CausalOptions::default();
    let req: ValidateRequest =
        serde_json::from_value(json!({"dag": dag, "treatment": ["X2","X1"], "outcome": ["Y1","Y2"]})).unwrap();
    let id = validate(&req.canonical(&opts), &opts, &|| false).unwrap().identification.unwrap();
    assert_eq!(id.backdoor_sets, sets(&[&["C"]]));
    assert_eq!(req.canonical(&opts).treatment, Some(NodeNames::Many(vec!["X1".into(), "X2".into()])));
}

#[test]
fn cyclic_graph_is_reported_not_rejected_by_validate() {
    let opts = CausalOptions::default();
    let req: ValidateRequest = serde_json::from_value(
        json!({"dag": {"edges": [["A","B"],["B","C"],["C","A"],["C","D"]]}, "treatment": "A", "outcome": "D"}),
    )
    .unwrap();
    let out = validate(&req.canonical(&opts), &opts, &|| false).unwrap();
    assert!(!out.acyclic);
    assert_eq!(out.cycle, Some(vec!["A".into(), "B".into(), "C".into(), "A".into()]));
    assert!(out.identification.is_none());
    // Routes that need a DAG reject it, naming the cycle.
    let req: isl_causal::DSeparationRequest =
        serde_json::from_value(json!({"dag": {"edges": [["A","B"],["B","A"]]}, "x": "A", "y": "B"})).unwrap();
    match d_separation(&req.canonical(), &opts, &|| false) {
        Err(CausalError::Cyclic { cycle }) => assert_eq!(cycle, vec!["A", "B", "A"]),
        other => panic!("expected a cycle error, got {other:?}"),
    }
}

#[test]
fn self_loop_duplicates_and_empty_graph() {
    let opts = CausalOptions::default();
    let ask = |dag: serde_json::Value| {
        let req: ValidateRequest = serde_json::from_value(json!({"dag": dag})).unwrap();
        validate(&req.canonical(&opts), &opts, &|| false).unwrap()
    };
    let looped = ask(json!({"edges": [["A","A"]]}));
    assert!(!looped.acyclic);
    assert_eq!(looped.cycle, Some(vec!["A".into(), "A".into()]));
    let dup = ask(json!({"edges": [["A","B"],["A","B"],["A","B"]]}));
    assert!(dup.acyclic);
    assert_eq!(dup.edge_count, 1);
    assert_eq!(dup.warnings.len(), 1, "{:?}", dup.warnings);
    let empty = ask(json!({"edges": []}));
    assert_eq!((empty.node_count, empty.edge_count), (0, 0));
    assert!(empty.warnings.iter().any(|w| w.contains("empty")));
}

#[test]
fn bad_names_and_limits_are_errors() {
    let opts = CausalOptions { graph: GraphLimits { max_nodes: 3, max_edges: 2 }, ..CausalOptions::default() };
    let run = |v: serde_json::Value| {
        let req: ValidateRequest = serde_json::from_value(v).unwrap();
        validate(&req.canonical(&opts), &opts, &|| false)
    };
    let err = run(json!({"dag": {"edges": [["A","B"]]}, "treatment": "Q", "outcome": "R"})).unwrap_err();
    assert_eq!(err, CausalError::UnknownNodes { field: "treatment".into(), names: vec!["Q".into()] });
    assert_eq!(err.to_string(), "node 'Q' is not in the graph");
    let err = run(json!({"dag": {"edges": [["A","B"]]}, "treatment": "A", "outcome": "A"})).unwrap_err();
    assert_eq!(err.code(), "overlapping_sets");
    let err = run(json!({"dag": {"edges": [["A","B"],["C","D"]]}})).unwrap_err();
    assert_eq!(err.code(), "too_many_nodes");
    let err = run(json!({"dag": {"edges": [["A","B"],["B","C"],["A","C"]]}})).unwrap_err();
    assert_eq!(err.code(), "too_many_edges");
    let err = run(json!({"dag": {"edges": [["A","B"]], "latent": ["Z"]}})).unwrap_err();
    assert_eq!(err.code(), "unknown_node");
    let err = run(json!({"dag": {"edges": [["A",""]]}})).unwrap_err();
    assert_eq!(err.code(), "empty_node_name");
    let err = run(json!({"dag": {"edges": [["A","B"]]}, "treatment": "A", "outcome": "B", "max_sets": 1_000_000}))
        .unwrap_err();
    assert_eq!(err.code(), "over_limit");
}

#[test]
fn interrupted_enumeration_reports_interrupted() {
    let spec = isl_causal::generate::random_dag(&isl_causal::generate::RandomDagParams {
        nodes: 60,
        avg_parents: 3.0,
        window: 10,
        latent_share: 0.2,
        seed: 7,
    });
    let dag = Dag::from_spec(&spec, &GraphLimits::default()).unwrap();
    let r = dag.minimal_backdoor_sets(&[dag.id("V5").unwrap()], &[dag.id("V55").unwrap()], 100, &|| true);
    assert_eq!(r, Err(CausalError::Interrupted));
}

#[test]
fn thousand_node_graph_lists_and_truncates() {
    let spec = isl_causal::generate::random_dag(&isl_causal::generate::RandomDagParams {
        nodes: 1000,
        avg_parents: 2.0,
        window: 20,
        latent_share: 0.1,
        seed: 42,
    });
    let dag = Dag::from_spec(&spec.canonical(), &GraphLimits::default()).unwrap();
    let (x, y) = (dag.id("V500").unwrap(), dag.id("V520").unwrap());
    let list = dag.minimal_backdoor_sets(&[x], &[y], 100, &|| false).unwrap();
    assert!(!list.sets.is_empty());
    // Every listed set is a valid back-door set, and removing any member breaks it (minimality).
    for set in &list.sets {
        assert!(dag.backdoor_check(&[x], &[y], set).valid);
        for i in 0..set.len() {
            let mut smaller = set.clone();
            smaller.remove(i);
            assert!(!dag.backdoor_check(&[x], &[y], &smaller).valid);
        }
    }
    let mut unique = list.sets.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), list.sets.len());
}

#[test]
fn a_node_with_thousands_of_parents_stays_linear() {
    // Y has 5,000 parents P_i, each also a parent of X: a moral graph with married parents would
    // have 12.5 million edges; the listing works on a linear-size equivalent.
    let mut edges = vec![json!(["X", "Y"])];
    for i in 0..5000 {
        edges.push(json!([format!("P{i}"), "Y"]));
        edges.push(json!([format!("P{i}"), "X"]));
    }
    let opts = CausalOptions::default();
    let req: ValidateRequest =
        serde_json::from_value(json!({"dag": {"edges": edges}, "treatment": "X", "outcome": "Y"})).unwrap();
    let started = std::time::Instant::now();
    let id =
        validate(&req.canonical(&opts), &opts, &|| started.elapsed().as_secs() > 20).unwrap().identification.unwrap();
    // Every parent confounds X and Y: the only minimal set is all of them.
    assert_eq!(id.backdoor_sets.len(), 1);
    assert_eq!(id.backdoor_sets[0].len(), 5000);
}
