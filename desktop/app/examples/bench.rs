//! Measures the desktop app on a large site, without a window (`scripts/bench-desktop.sh`):
//!
//! ```sh
//! bench PAGES EDITS [KEEP_DIR]  # a starter site plus PAGES generated pages (100 per section,
//!                               # 5 tags of 200); the site is left in KEEP_DIR if given
//! ```
//!
//! Prints: the first save and the first preview of the whole site; the app's start (settings
//! read, site opened) and its first screen (the page list) rendered; then for EDITS edits of one
//! page, the time from the edit on disk to its preview rendered (the refresh: scan, tree, publish
//! into the preview index; and the page itself) as p50/p99; and the process's memory.

use std::time::Instant;

use desktop_app::{App, Request, Settings};
use desktop_core::preview::Preview;
use desktop_core::save::Author;
use desktop_core::Workspace;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn page_text(section: usize, page: usize, version: usize) -> String {
    let tags: Vec<String> = (0..5).map(|k| format!("\"tag{}\"", (section * 7 + page * 3 + k * 41) % 200)).collect();
    let para = format!("Paragraph of page {page} in section {section}, version {version}. ").repeat(12);
    format!(
        "+++\ntitle = \"Page {page} of section {section}\"\ndate = 2026-01-{:02}\ntags = [{}]\n+++\n\n{}\n",
        1 + page % 28,
        tags.join(", "),
        format!("{para}\n\n").repeat(5)
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<usize> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let (pages, edits) = (args.first().copied().unwrap_or(10_000), args.get(1).copied().unwrap_or(50));
    let tmp = tempfile::tempdir()?;
    let dir = raw.get(2).map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().join("site"));
    let author = Author { name: "Bench".into(), email: "bench@example.org".into() };
    let ws = Workspace::create_from_starter(&dir, &author)?;
    for i in 0..pages {
        let (section, page) = (i / 100, i % 100);
        let path = dir.join(format!("content/s{section}/p{page}.md"));
        std::fs::create_dir_all(path.parent().unwrap())?;
        if page == 0 {
            std::fs::write(path.with_file_name("_index.md"), format!("+++\ntitle = \"Section {section}\"\n+++\n"))?;
        }
        std::fs::write(&path, page_text(section, page, 0))?;
    }
    let t = Instant::now();
    ws.save("Generated pages", &author)?;
    println!("first save of {pages} pages: {:.0} ms", ms(t));
    let preview = Preview::open(&ws)?;
    let t = Instant::now();
    preview.refresh(&ws)?;
    println!("first preview of the whole site: {:.0} ms", ms(t));
    drop(preview);
    drop(ws);

    // The app's start: settings read, site opened (and its preview), first screen rendered.
    let settings = tmp.path().join("desktop.toml");
    Settings { site: Some(dir.clone()), ..Default::default() }.save(&settings)?;
    let t = Instant::now();
    let app = App::new(settings)?;
    let started = ms(t);
    let get = |path: &str, host: &str| Request {
        method: "GET".into(),
        host: host.into(),
        path: path.into(),
        query: String::new(),
        body: vec![],
        navigation: true,
        sender: None,
    };
    let first = app.handle(get("/pages", "localhost")).await;
    println!(
        "app start: {started:.0} ms; first screen (page list of {} pages, nothing remembered yet) after {:.0} ms",
        pages + 6,
        ms(t)
    );
    assert_eq!(first.status, 200);
    drop(app);
    // The next start: the page list's cache is there (as on every start but the first).
    std::thread::sleep(std::time::Duration::from_secs(2)); // past the racy window of the last writes
    let _ = App::new(tmp.path().join("desktop.toml"))?.handle(get("/pages", "localhost")).await;
    let t = Instant::now();
    let app = App::new(tmp.path().join("desktop.toml"))?;
    let again = app.handle(get("/pages", "localhost")).await;
    assert_eq!(again.status, 200);
    println!("next start: first screen after {:.0} ms", ms(t));
    // The app opens its preview on a thread after start; let it finish before timing edits.
    std::thread::sleep(std::time::Duration::from_secs(2));

    // Edits of one page: on disk → preview rendered.
    let ws = Workspace::open(&dir)?;
    let preview = Preview::open(&ws)?;
    preview.refresh(&ws)?;
    let mut times = Vec::new();
    for v in 1..=edits {
        std::fs::write(dir.join("content/s3/p7.md"), page_text(3, 7, v))?;
        let t = Instant::now();
        preview.refresh(&ws)?;
        let answer = preview.get("/s3/p7/").await?;
        times.push(ms(t));
        assert!(String::from_utf8_lossy(&answer.body).contains(&format!("version {v}")), "the preview shows the edit");
    }
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!("edit → preview rendered ({edits} edits): p50 {:.0} ms, p99 {:.0} ms", pct(0.5), pct(0.99));
    println!("memory: {} MiB now, {} MiB at most", rss_kib("VmRSS:") / 1024, rss_kib("VmHWM:") / 1024);
    Ok(())
}
