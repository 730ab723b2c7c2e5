//! `/v1/batch`: many compute requests in one, run in dependency order.
//!
//! A batch is `{"items": [{"id", "route", "body", "after"?: [ids]}]}`. Every item runs through the
//! service's normal route — [`Service::handle`](crate::Service::handle) with a POST of its body —
//! so each is decoded, limited, cached (its own ETag and cache entry), timed and counted exactly
//! like a single request; the batch as a whole is never cached. An item runs once every item it
//! names in `after` has finished (whatever their status: `after` orders, it does not gate), and
//! items with no order between them run concurrently (scoped worker threads on native targets;
//! one after another in a fixed topological order on wasm). One failing item does not fail the others:
//! each gets its own status and body. A route that is not a compute route is that item's 404.
//!
//! The answer lists the items in request order:
//! `{"items": [{"id", "route", "status", "body", "etag"?, "cache"?}], "completed": [ids]}` with the
//! order in which they finished. With `Accept: application/x-ndjson` the same item objects come
//! one per line in completion order instead: a streaming transport (the native server) sends
//! each line as its item finishes through [`crate::Service::handle_batch_stream`]; through
//! [`crate::Service::handle`] (the edge component, the browser) the same lines come in one body
//! when the batch ends.
//!
//! Bad batches are 422: too many items (`over_limit`), an empty or repeated id (`invalid_id`,
//! `duplicate_id`), `after` naming no item (`unknown_dependency`), or a cycle in `after`
//! (`dependency_cycle`, with one cycle in `details`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The path of the batch route.
pub const BATCH: &str = "/v1/batch";

/// One request of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// The item's id (unique in the batch).
    pub id: String,
    /// A compute route, e.g. `/v1/counterfactual`.
    pub route: String,
    /// The request body for that route.
    pub body: Value,
    /// Ids of items that must finish before this one starts.
    #[serde(default)]
    pub after: Vec<String>,
}

/// A `/v1/batch` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The items.
    pub items: Vec<BatchItem>,
}

/// Why a batch as a whole is refused (422).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// More items than the configured limit.
    #[error("the batch has {count} items; the limit is {limit}")]
    TooManyItems {
        /// Items in the batch.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An empty id.
    #[error("item {index} has an empty id")]
    InvalidId {
        /// The item's position.
        index: usize,
    },
    /// Two items with one id.
    #[error("the id '{id}' is used by more than one item")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// `after` names an id no item has.
    #[error("item '{id}' waits for '{after}', which is not an item of the batch")]
    UnknownDependency {
        /// The waiting item.
        id: String,
        /// The missing id.
        after: String,
    },
    /// `after` has a cycle: these items would wait for each other forever.
    #[error("the items wait for each other in a cycle: {}", .cycle.join(" -> "))]
    Cycle {
        /// One cycle as a closed walk (`["a", "b", "a"]`).
        cycle: Vec<String>,
    },
}

impl BatchError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            BatchError::TooManyItems { .. } => "over_limit",
            BatchError::InvalidId { .. } => "invalid_id",
            BatchError::DuplicateId { .. } => "duplicate_id",
            BatchError::UnknownDependency { .. } => "unknown_dependency",
            BatchError::Cycle { .. } => "dependency_cycle",
        }
    }

    /// Structured details.
    pub fn details(&self) -> Value {
        match self {
            BatchError::TooManyItems { count, limit } => json!({"what": "batch items", "count": count, "limit": limit}),
            BatchError::InvalidId { index } => json!({"index": index}),
            BatchError::DuplicateId { id } => json!({"id": id}),
            BatchError::UnknownDependency { id, after } => json!({"id": id, "after": after}),
            BatchError::Cycle { cycle } => json!({"cycle": cycle}),
        }
    }
}

/// A checked batch: for each item, the items it waits for and the items waiting for it.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) waits_for: Vec<Vec<usize>>,
    pub(crate) waited_by: Vec<Vec<usize>>,
}

/// Checks ids, dependencies and acyclicity.
pub(crate) fn plan(batch: &BatchRequest, max_items: usize) -> Result<Plan, BatchError> {
    let n = batch.items.len();
    if n > max_items {
        return Err(BatchError::TooManyItems { count: n, limit: max_items });
    }
    let mut index = std::collections::BTreeMap::new();
    for (i, item) in batch.items.iter().enumerate() {
        if item.id.is_empty() {
            return Err(BatchError::InvalidId { index: i });
        }
        if index.insert(item.id.as_str(), i).is_some() {
            return Err(BatchError::DuplicateId { id: item.id.clone() });
        }
    }
    let mut waits_for = vec![Vec::new(); n];
    let mut waited_by = vec![Vec::new(); n];
    for (i, item) in batch.items.iter().enumerate() {
        for dep in &item.after {
            let Some(&j) = index.get(dep.as_str()) else {
                return Err(BatchError::UnknownDependency { id: item.id.clone(), after: dep.clone() });
            };
            if !waits_for[i].contains(&j) {
                waits_for[i].push(j);
                waited_by[j].push(i);
            }
        }
    }
    if let Some(cycle) = find_cycle(&waits_for) {
        let mut names: Vec<String> = cycle.iter().map(|&i| batch.items[i].id.clone()).collect();
        names.push(names[0].clone());
        return Err(BatchError::Cycle { cycle: names });
    }
    Ok(Plan { waits_for, waited_by })
}

/// One directed cycle of the "waits for" graph, if any (iterative depth-first search).
fn find_cycle(waits_for: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let n = waits_for.len();
    let mut mark = vec![Mark::New; n];
    for root in 0..n {
        if mark[root] != Mark::New {
            continue;
        }
        // Stack of (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            if let Some(&next) = waits_for[node].get(*edge) {
                *edge += 1;
                match mark[next] {
                    Mark::New => {
                        mark[next] = Mark::Open;
                        stack.push((next, 0));
                    }
                    Mark::Open => {
                        // The cycle is the stack from `next` to the top.
                        let start = stack.iter().position(|&(v, _)| v == next).unwrap_or(0);
                        return Some(stack[start..].iter().map(|&(v, _)| v).collect());
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// Runs `f` on every item in dependency order; returns the results in completion order.
///
/// On native targets a few scoped worker threads (at most one per core and per item) take ready
/// items from a shared queue, lowest index first. Not rayon tasks: an item may block — waiting
/// for an identical request already being computed (cache coalescing), or for a model batch —
/// and a rayon worker blocked that way could be the one that owes the awaited computation a
/// stolen job; the items' own computations still use the rayon pool. On wasm, one item after
/// another in the same order.
pub(crate) fn run<R: Send>(plan: &Plan, f: &(dyn Fn(usize) -> R + Sync)) -> Vec<(usize, R)> {
    let n = plan.waits_for.len();
    let remaining: Vec<usize> = plan.waits_for.iter().map(Vec::len).collect();
    let ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    #[cfg(not(target_family = "wasm"))]
    {
        use std::sync::{Condvar, Mutex, PoisonError};

        struct State<R> {
            ready: std::collections::BTreeSet<usize>,
            remaining: Vec<usize>,
            done: Vec<(usize, R)>,
        }
        let state = Mutex::new(State { ready, remaining, done: Vec::with_capacity(n) });
        let wake = Condvar::new();
        let workers = std::thread::available_parallelism().map_or(1, |c| c.get()).min(n).max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let next = {
                            let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                            loop {
                                if let Some(i) = st.ready.pop_first() {
                                    break Some(i);
                                }
                                if st.done.len() == n {
                                    break None;
                                }
                                st = wake.wait(st).unwrap_or_else(PoisonError::into_inner);
                            }
                        };
                        let Some(i) = next else { return };
                        let r = f(i);
                        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                        st.done.push((i, r));
                        for &j in &plan.waited_by[i] {
                            st.remaining[j] -= 1;
                            if st.remaining[j] == 0 {
                                st.ready.insert(j);
                            }
                        }
                        drop(st);
                        wake.notify_all();
                    }
                });
            }
        });
        state.into_inner().unwrap_or_else(PoisonError::into_inner).done
    }
    #[cfg(target_family = "wasm")]
    {
        // Kahn's algorithm, the lowest ready index first.
        let (mut ready, mut remaining) = (ready, remaining);
        let mut done = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            done.push((i, f(i)));
            for &j in &plan.waited_by[i] {
                remaining[j] -= 1;
                if remaining[j] == 0 {
                    ready.insert(j);
                }
            }
        }
        done
    }
}

/// One item's result as a JSON object, with its body embedded byte for byte (the body is the
/// route's JSON, or null when empty or not JSON).
pub(crate) fn item_json(id: &str, route: &str, resp: &crate::http::Response) -> Vec<u8> {
    let mut out = Vec::with_capacity(resp.body.len() + 128);
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(&serde_json::to_vec(id).unwrap_or_default());
    out.extend_from_slice(b",\"route\":");
    out.extend_from_slice(&serde_json::to_vec(route).unwrap_or_default());
    out.extend_from_slice(format!(",\"status\":{}", resp.status).as_bytes());
    for (key, header) in [("etag", "etag"), ("cache", "x-cache")] {
        if let Some(v) = resp.header(header) {
            out.extend_from_slice(format!(",\"{key}\":").as_bytes());
            out.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
        }
    }
    out.extend_from_slice(b",\"body\":");
    let is_json = resp.header("content-type").is_some_and(|c| c.starts_with("application/json"));
    if is_json && !resp.body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&resp.body).is_ok() {
        out.extend_from_slice(&resp.body);
    } else {
        out.extend_from_slice(b"null");
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(items: &[(&str, &[&str])]) -> BatchRequest {
        BatchRequest {
            items: items
                .iter()
                .map(|(id, after)| BatchItem {
                    id: id.to_string(),
                    route: "/x".into(),
                    body: json!({}),
                    after: after.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn plans_check_ids_dependencies_and_cycles() {
        assert!(plan(&batch(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b"])]), 10).is_ok());
        assert_eq!(plan(&batch(&[("a", &[]), ("a", &[])]), 10).unwrap_err().code(), "duplicate_id");
        assert_eq!(plan(&batch(&[("", &[])]), 10).unwrap_err().code(), "invalid_id");
        assert_eq!(plan(&batch(&[("a", &["z"])]), 10).unwrap_err().code(), "unknown_dependency");
        assert_eq!(plan(&batch(&[("a", &[]), ("b", &[])]), 1).unwrap_err().code(), "over_limit");
        let e = plan(&batch(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]), 10).unwrap_err();
        let BatchError::Cycle { cycle } = e else { panic!("{e:?}") };
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
        let e = plan(&batch(&[("a", &["a"])]), 10).unwrap_err();
        assert_eq!(e, BatchError::Cycle { cycle: vec!["a".into(), "a".into()] });
    }

    #[test]
    fn every_item_runs_after_its_dependencies() {
        // A diamond and a chain: a -> {b, c} -> d; e -> f.
        let b = batch(&[("d", &["b", "c"]), ("b", &["a"]), ("c", &["a"]), ("a", &[]), ("f", &["e"]), ("e", &[])]);
        let p = plan(&b, 10).unwrap();
        for _ in 0..20 {
            let order: Vec<usize> = run(&p, &|i| i)
                .into_iter()
                .map(|(i, r)| {
                    assert_eq!(i, r);
                    i
                })
                .collect();
            assert_eq!(order.len(), 6);
            let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
            for (i, deps) in p.waits_for.iter().enumerate() {
                for &d in deps {
                    assert!(pos(d) < pos(i), "{order:?}");
                }
            }
        }
    }
}
