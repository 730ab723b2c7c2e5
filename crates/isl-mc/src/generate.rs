//! Seeded random models for benchmarks and tests: the linear model with uncertain coefficients
//! that `examples/mc_timing.rs`, isl-gpu's `gpu_timing` and the numpy peer all time, so that
//! their figures are for the same model.

use serde_json::{Value, json};

/// splitmix64: a fixed, dependency-free generator for the model's shape (its `below` is a plain
/// modulo; keep it so that a seed keeps giving the same model).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random linear model `N00..N{nodes-1}` as model JSON (DESIGN.md): each node after the first
/// has 1–3 earlier parents, the previous node among them (so every node is an ancestor of the
/// last), each coefficient a normal belief, intercept 1, normal noise. The same `seed` gives the
/// same model.
pub fn benchmark_model(nodes: usize, seed: u64) -> Value {
    let mut r = Mix(seed);
    let name = |i: usize| format!("N{i:02}");
    let list: Vec<Value> = (0..nodes)
        .map(|i| {
            let mut node = json!({"name": name(i), "intercept": 1.0,
                                  "noise": {"dist": "normal", "mean": 0.0, "std": 0.5 + r.unit()}});
            if i > 0 {
                let k = 1 + r.below(3.min(i as u64)) as usize;
                let mut parents = serde_json::Map::new();
                while parents.len() < k {
                    // The previous node first, so that every node is an ancestor of the last one.
                    let p = if parents.is_empty() { i - 1 } else { r.below(i as u64) as usize };
                    let belief = json!({"dist": "normal", "mean": 0.8 * r.unit() - 0.4, "std": 0.05 + 0.1 * r.unit()});
                    parents.insert(name(p), belief);
                }
                node["parents"] = Value::Object(parents);
            }
            node
        })
        .collect();
    json!({"nodes": list})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_model_is_a_checked_model_fixed_by_its_seed() {
        let v = benchmark_model(30, 2024);
        assert_eq!(v, benchmark_model(30, 2024));
        assert_ne!(v, benchmark_model(30, 2025));
        let spec: crate::model::ModelSpec = serde_json::from_value(v).unwrap();
        assert_eq!(spec.nodes.len(), 30);
    }
}
