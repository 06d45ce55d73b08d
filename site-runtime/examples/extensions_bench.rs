//! Measures what extensions cost, on a site repository prepared by `scripts/bench-extensions.sh`
//! with three branches: `plain` (no plugins), `filters` (the starter's reading-time and toc
//! filters), and `plugins20-a`/`plugins20-b` (20 plugins, two versions).
//!
//! Prints, for `plain` and `filters`: the median and mean time of an uncached render (each of
//! N distinct pages requested once through the router) and of a cached page; then the time to
//! compile and swap the 20 plugins (publishing a commit that changes only plugin files).
//!
//! Usage: extensions_bench GIT_DIR WORK_DIR [PAGES]

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use site_runtime::Site;
use tower::ServiceExt;

#[global_allocator]
static ALLOCATOR: site_runtime::extensions::memory::CountingAllocator =
    site_runtime::extensions::memory::CountingAllocator(std::alloc::System);

fn head(git_dir: &std::path::Path, branch: &str) -> gix::ObjectId {
    let repo = gix::open(git_dir).expect("open repository");
    let mut r = repo.find_reference(format!("refs/heads/{branch}").as_str()).expect("branch");
    r.peel_to_id().expect("commit").detach()
}

async fn get(router: &axum::Router, path: &str) -> usize {
    let resp = router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().len()
}

fn stats(mut micros: Vec<f64>) -> (f64, f64) {
    micros.sort_by(|a, b| a.total_cmp(b));
    let median = micros[micros.len() / 2];
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    (median, mean)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let git_dir = std::path::PathBuf::from(&args[1]);
    let work = std::path::PathBuf::from(&args[2]);
    let pages: usize = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(2000);
    for branch in ["plain", "filters"] {
        let site = Site::open(&git_dir, "main", work.join(format!("{branch}.sqlite"))).unwrap();
        let p = site.publish(head(&git_dir, branch), &mut |_| {}).unwrap();
        let site = Arc::new(site);
        let router = site_runtime::http::router(site.clone());
        // Warm up SQLite and the allocator on pages not measured.
        for i in 0..50 {
            get(&router, &format!("/s{}/page-{}/", (9000 + i) % 50, 9000 + i)).await;
        }
        let mut uncached = Vec::with_capacity(pages);
        for i in 0..pages {
            let path = format!("/s{}/page-{i}/", i % 50);
            let t = Instant::now();
            get(&router, &path).await;
            uncached.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let mut cached = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let t = Instant::now();
            get(&router, "/s3/page-3/").await;
            cached.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let (um, ua) = stats(uncached);
        let (cm, ca) = stats(cached);
        let plugins = site.snapshot().unwrap().extensions.names().join(",");
        println!(
            "{branch}: plugins [{plugins}] built in {} ms; uncached render median {um:.0} µs mean {ua:.0} µs; \
             cached median {cm:.2} µs mean {ca:.2} µs",
            p.millis
        );
    }
    // 20 plugins: publish a (indexed) commit, then alternate between two versions of the plugins.
    let site = Site::open(&git_dir, "main", work.join("plugins20.sqlite")).unwrap();
    site.publish(head(&git_dir, "plugins20-a"), &mut |_| {}).unwrap();
    let mut swaps = Vec::new();
    for i in 0..10 {
        let branch = if i % 2 == 0 { "plugins20-b" } else { "plugins20-a" };
        let p = site.publish(head(&git_dir, branch), &mut |_| {}).unwrap();
        assert_eq!(p.stats.documents, 0, "only plugin files change");
        swaps.push(p.millis as f64 * 1000.0);
    }
    let n = site.snapshot().unwrap().extensions.names().len();
    let (median, _) = stats(swaps);
    println!(
        "swap: {n} plugins compiled and swapped (publish of a plugins-only commit) median {:.0} ms",
        median / 1000.0
    );
}
