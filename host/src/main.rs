//! The `isl` binary (work in progress).

fn main() {}
