//! Measures what Cedar authorization costs for a push touching N paths (default 1,000): one
//! decision per path, as pre-receive makes them. Run by `scripts/bench-site.sh`:
//! `cargo run --release -p hooks --example authz_cost -- 1000`.

use std::time::Instant;

use hooks::authz::{Authz, Resource};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let authz = Authz::with_defaults().expect("built-in policies");
    let roles = vec!["editor".to_string()];
    let paths: Vec<String> = (0..n).map(|i| format!("content/s{}/page-{i}.md", i % 50)).collect();
    for path in paths.iter().take(50) {
        let _ = authz.check("alice", &roles, "change", Resource::Path { path, branch: "admin" });
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for path in &paths {
            authz
                .check("alice", &roles, "change", Resource::Path { path, branch: "admin" })
                .expect("editors may change content");
        }
        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
    }
    println!("authorized {n} paths in {best:.1} ms ({:.1} µs/path, best of 5)", best * 1000.0 / n as f64);
}
