//! New site folders: one cloned from a server, or one started from the starter site. (Above
//! [`workspace`](crate::workspace), [`save`](crate::save) and [`sync`](crate::sync), which they
//! use.)

use std::path::{Path, PathBuf};

use crate::worktree::{self, Files};
use crate::{Error, Result, Workspace};

impl Workspace {
    /// Make `dir` (absent or empty) a new Git folder, without files yet.
    fn init(dir: &Path) -> Result<Workspace> {
        if dir.exists() && std::fs::read_dir(dir).map_err(Error::fs(dir))?.next().is_some() {
            return Err(Error::NotASite(format!("{} is not empty; choose an empty folder", dir.display())));
        }
        std::fs::create_dir_all(dir).map_err(Error::fs(dir))?;
        gix::init(dir).map_err(Error::git)?;
        // `main`, whatever the system's git defaults to.
        let head = dir.join(".git/HEAD");
        std::fs::write(&head, "ref: refs/heads/main\n").map_err(Error::fs(&head))?;
        Self::open(dir)
    }

    /// A new site in `dir` from the starter (the site every server's demo shows), saved once.
    pub fn create_from_starter(dir: impl Into<PathBuf>, author: &crate::save::Author) -> Result<Workspace> {
        let dir = dir.into();
        let ws = Self::init(&dir)?;
        for (path, text) in site_runtime::starter::FILES {
            worktree::write_file(&dir.join(path), text.as_bytes(), gix::objs::tree::EntryKind::Blob)?;
        }
        ws.save("Start the site from the WhisperCMS starter", author)?;
        Ok(ws)
    }

    /// Clone the site at `remote` into `dir` (absent or empty): every branch as
    /// `refs/remotes/origin/*`, `main` checked out.
    pub async fn clone_from(
        remote: &impl githost::client::Transport,
        url: &str,
        dir: impl Into<PathBuf>,
    ) -> Result<Workspace> {
        let dir = dir.into();
        let ws = Self::init(&dir)?;
        let config = dir.join(".git/config");
        let mut text = std::fs::read_to_string(&config).map_err(Error::fs(&config))?;
        text.push_str(&format!(
            "[remote \"origin\"]\n\turl = {url}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n\
             [branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n"
        ));
        std::fs::write(&config, text).map_err(Error::fs(&config))?;
        crate::sync::fetch(&ws, remote).await?;
        let Some(main) = ws.remote_tip("main")? else {
            return Err(Error::NotASite(format!("{url} has no main branch: there is no site there yet")));
        };
        ws.move_ref("refs/heads/main", None, main, "clone")?;
        let local = ws.local();
        let tree = ws.tree_of(main)?;
        worktree::checkout(&local, &dir, &Files::new(), &worktree::files_of(&local, tree)?)?;
        worktree::reset_index(&local, tree)?;
        Ok(ws)
    }
}
