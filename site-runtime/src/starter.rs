//! The starter site: what a new demo repository holds as its first commit on `main`, written
//! with gix straight into the object database (no `git` binary, no work tree).

use gix::ObjectId;

use crate::error::{Error, Result};

/// The starter site's files, compiled into the server.
pub const FILES: &[(&str, &str)] = &[
    ("site.toml", include_str!("../starter/site.toml")),
    ("content/_index.md", include_str!("../starter/content/_index.md")),
    ("content/about.md", include_str!("../starter/content/about.md")),
    ("content/blog/_index.md", include_str!("../starter/content/blog/_index.md")),
    ("content/blog/hello-world.md", include_str!("../starter/content/blog/hello-world.md")),
    ("content/blog/writing-offline.md", include_str!("../starter/content/blog/writing-offline.md")),
    ("content/blog/safe-by-default.md", include_str!("../starter/content/blog/safe-by-default.md")),
    ("static/images/whisper.svg", include_str!("../starter/static/images/whisper.svg")),
    ("plugins/reading-time/plugin.toml", include_str!("../starter/plugins/reading-time/plugin.toml")),
    ("plugins/reading-time/main.rhai", include_str!("../starter/plugins/reading-time/main.rhai")),
    ("plugins/toc/plugin.toml", include_str!("../starter/plugins/toc/plugin.toml")),
    ("plugins/toc/main.rhai", include_str!("../starter/plugins/toc/main.rhai")),
    ("plugins/related-posts/plugin.toml", include_str!("../starter/plugins/related-posts/plugin.toml")),
    ("plugins/related-posts/main.rhai", include_str!("../starter/plugins/related-posts/main.rhai")),
    ("plugins/search-api/plugin.toml", include_str!("../starter/plugins/search-api/plugin.toml")),
    ("plugins/search-api/main.rhai", include_str!("../starter/plugins/search-api/main.rhai")),
    ("plugins/contact-form/plugin.toml", include_str!("../starter/plugins/contact-form/plugin.toml")),
    ("plugins/contact-form/main.rhai", include_str!("../starter/plugins/contact-form/main.rhai")),
    ("policies/plugins.cedar", include_str!("../starter/policies/plugins.cedar")),
];

/// Commit the starter's [`FILES`] (plus `extra`, which may replace some) as the first commit of `branch` in the repository at `git_dir`,
/// if that branch does not exist yet. Returns the new commit, or `None` if the branch exists.
pub fn seed(git_dir: &std::path::Path, branch: &str, extra: &[(String, String)]) -> Result<Option<ObjectId>> {
    let all: Vec<(String, String)> =
        FILES.iter().map(|(p, t)| (p.to_string(), t.to_string())).chain(extra.iter().cloned()).collect();
    commit_files(git_dir, branch, &all, "Starter site")
}

/// Commit `files` (path, text; a later path replaces an earlier one) as the first commit of
/// `branch`, unless the branch exists. Returns the commit, or `None` if the branch existed.
pub fn commit_files(
    git_dir: &std::path::Path,
    branch: &str,
    files: &[(String, String)],
    message: &str,
) -> Result<Option<ObjectId>> {
    let repo = gix::open_opts(git_dir, crate::source::open_options()).map_err(Error::git)?;
    let name = format!("refs/heads/{branch}");
    if repo.try_find_reference(name.as_str()).map_err(Error::git)?.is_some() {
        return Ok(None);
    }
    let mut editor = repo.edit_tree(ObjectId::empty_tree(gix::hash::Kind::Sha1)).map_err(Error::git)?;
    for (path, text) in files {
        let blob = repo.write_blob(text.as_bytes()).map_err(Error::git)?.detach();
        editor.upsert(path.as_str(), gix::objs::tree::EntryKind::Blob, blob).map_err(Error::git)?;
    }
    let tree = editor.write().map_err(Error::git)?.detach();
    let who = gix::actor::Signature {
        name: "WhisperCMS".into(),
        email: "whispercms@localhost".into(),
        time: gix::date::Time::now_utc(),
    };
    let mut time = gix::date::parse::TimeBuf::default();
    let sig = who.to_ref(&mut time);
    let commit =
        repo.commit_as(sig, sig, name.as_str(), message, tree, Vec::<ObjectId>::new()).map_err(Error::git)?.detach();
    Ok(Some(commit))
}
