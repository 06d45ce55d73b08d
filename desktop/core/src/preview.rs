//! The preview: the folder as it is (saved or not), rendered by the server's own runtime
//! (`site_runtime`: the site's theme, templates, shortcodes and plugins) without a network.
//!
//! Each [`Preview::refresh`] turns the folder into a commit nobody references (scanning only
//! files that changed, see [`worktree`]) and publishes it into a private index
//! (`.git/whispercms/preview.sqlite`); [`Preview::get`] answers a path the way the live server
//! would, through the same router.

use std::sync::Arc;

use gix::ObjectId;
use site_runtime::Site;

use crate::worktree;
use crate::{Error, Result, Workspace};

/// One answer of the preview.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The preview of one site folder.
pub struct Preview {
    site: Arc<Site>,
    router: axum::Router,
    /// The tree last rendered, to skip a refresh when nothing changed.
    rendered: std::sync::Mutex<Option<ObjectId>>,
}

impl Preview {
    /// A preview of `ws` (nothing rendered until [`refresh`](Self::refresh)).
    pub fn open(ws: &Workspace) -> Result<Preview> {
        let git_dir = ws.repository().git_dir().to_path_buf();
        let index = git_dir.join("whispercms/preview.sqlite");
        if let Some(parent) = index.parent() {
            std::fs::create_dir_all(parent).map_err(Error::fs(parent))?;
        }
        let site = Arc::new(Site::open(&git_dir, &ws.branch()?, index)?);
        let router = site_runtime::http::router(site.clone());
        Ok(Preview { site, router, rendered: std::sync::Mutex::new(None) })
    }

    /// Render the folder as it is now; `false` when it had not changed since the last refresh.
    pub fn refresh(&self, ws: &Workspace) -> Result<bool> {
        let repo = ws.local();
        let files = worktree::scan(&repo, ws.dir())?;
        let tree = worktree::write_tree(&repo, &files)?;
        let mut rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if *rendered == Some(tree) {
            return Ok(false);
        }
        let commit = crate::save::write_commit(&repo, &crate::save::Author::app(), "preview", tree, ws.head()?)?;
        self.site.publish(commit, &mut |_| {})?;
        *rendered = Some(tree);
        Ok(true)
    }

    /// Answer `path` (with its query) as the server would.
    pub async fn get(&self, path: &str) -> Result<Answer> {
        use tower::ServiceExt as _;
        let request = axum::http::Request::builder()
            .uri(path)
            .header("host", "preview.localhost")
            .body(axum::body::Body::empty())
            .map_err(|e| Error::Page { path: path.into(), reason: e.to_string() })?;
        let response = self.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(|e| Error::Page { path: path.into(), reason: e.to_string() })?
            .to_vec();
        Ok(Answer { status, content_type, body })
    }
}
