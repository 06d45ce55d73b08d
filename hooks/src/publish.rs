//! Publish on push: the post-receive hook that re-indexes and swaps the served snapshot when
//! `main` (the live site) or `admin` (the preview) moves. Other branches are only stored.
//!
//! Runs after the refs moved; a failure keeps the previous snapshot serving and is reported on
//! the push's output.

use std::sync::Arc;

use githost::{PostReceiveContext, UpdateKind};
use site_runtime::Site;

/// Publishes the branches that are served.
pub struct Publisher {
    /// `main`, served as the live site.
    pub live: Arc<Site>,
    /// `admin`, served as the preview, when a preview listener is configured.
    pub preview: Option<Arc<Site>>,
    /// Where the preview is served (`http://127.0.0.1:8081`, `https://preview.example.org`), for
    /// the push's message: `site.toml`'s `base_url` is the live site's address, not the preview's.
    pub preview_url: Option<String>,
}

impl Publisher {
    /// The served site of `branch` (short name), if it is served.
    pub fn site_for(&self, branch: &str) -> Option<Arc<Site>> {
        std::iter::once(&self.live).chain(self.preview.iter()).find(|s| s.branch() == branch).cloned()
    }

    /// Publish the served branches that `push` moved; returns the lines for the client.
    pub fn post_receive(&self, push: &PostReceiveContext<'_>) -> Vec<String> {
        let mut messages = Vec::new();
        for site in std::iter::once(&self.live).chain(self.preview.iter()) {
            let name = format!("refs/heads/{}", site.branch());
            let Some(update) = push.updates.iter().find(|u| u.name == name.as_str()) else { continue };
            if update.kind == UpdateKind::Delete {
                messages.push(format!("{} deleted; the site keeps serving its last commit", site.branch()));
                continue;
            }
            // The branch's head, not `update.new`: a later push may already have moved it, and
            // post-receive hooks of concurrent pushes may run in either order.
            // On failure it keeps trying in the background (and `/readyz` says why).
            match site.refresh_or_retry(&mut |_| {}) {
                Ok(None) => {
                    messages.push(format!("{} is already live (a concurrent push published it)", site.branch()))
                }
                Ok(Some(p)) => {
                    let is_preview = self.preview.as_ref().is_some_and(|p| Arc::ptr_eq(p, site));
                    let to = match (is_preview, &self.preview_url) {
                        (true, Some(url)) => format!("to the preview at {}/", url.trim_end_matches('/')),
                        (true, None) => "to the preview".to_string(),
                        (false, _) => {
                            let base = site.snapshot().map(|s| s.config.base().to_string()).unwrap_or_default();
                            format!("to {base}/")
                        }
                    };
                    let pages = p.stats.documents;
                    let what = if p.stats.full { "rebuilt" } else { "updated" };
                    let later = if p.commit == update.new { "" } else { ", with a later push" };
                    messages.push(format!(
                        "published {} {to} in {} ms ({what}: {pages} page{}, {} removed{later})",
                        site.branch(),
                        p.millis,
                        if pages == 1 { "" } else { "s" },
                        p.stats.removed
                    ));
                    messages.extend(p.notes.iter().map(|n| format!("warning: {n}")));
                    if p.stats.problems > 0 {
                        if let Ok(problems) = site.problems() {
                            for (path, message) in problems.iter().take(20) {
                                messages.push(format!("warning: not published: {path}: {message}"));
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(branch = site.branch(), error = %e, "publish failed; previous snapshot keeps serving");
                    messages.push(format!(
                        "error: {} not published ({e}); the previous version keeps serving, and the server tries again",
                        site.branch()
                    ));
                }
            }
        }
        messages
    }
}
