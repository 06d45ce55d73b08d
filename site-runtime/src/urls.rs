//! URL ownership: the URLs a document claims (its own and its aliases), the URLs the server
//! answers itself, and the collisions between claims. Two documents answering one URL would leave
//! one of them unreachable, so validation refuses such a push with both files named.

use std::collections::{BTreeMap, BTreeSet};

use gix::ObjectId;

use crate::content::document::{self, Document};
use crate::content::front_matter::{self, FrontMatter};
use crate::content::language::Languages;
use crate::error::{Error, Result};
use crate::source;

/// URLs the server answers itself, before any document (see `http::resolve`).
pub const RESERVED: &[&str] =
    &["/robots.txt", "/sitemap.xml", "/rss.xml", "/atom.xml", "/search", "/healthz", "/readyz"];

/// One document's claim on one URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    pub url: String,
    /// The document's repository path.
    pub path: String,
    /// Claimed through `aliases` (a redirect) rather than as the document's own URL.
    pub alias: bool,
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.alias {
            write!(f, "{} (as an alias)", self.path)
        } else {
            write!(f, "{}", self.path)
        }
    }
}

/// A URL claimed by more than one document, or by a document although the server answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub url: String,
    /// Every claim on the URL, sorted by path.
    pub claims: Vec<Claim>,
    /// The server answers the URL itself (feeds, search, health checks).
    pub reserved: bool,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who: Vec<String> = self.claims.iter().map(Claim::to_string).collect();
        if self.reserved {
            write!(f, "URL {} is the server's own; it cannot be claimed by {}", self.url, who.join(" and "))
        } else {
            write!(f, "URL {} is claimed by {}", self.url, who.join(" and "))
        }
    }
}

fn claims(path: &str, kind_url: String, meta: &FrontMatter) -> Vec<Claim> {
    let mut out = vec![Claim { url: kind_url, path: path.to_string(), alias: false }];
    for alias in &meta.aliases {
        if let Ok(url) = document::normalize_url(alias) {
            out.push(Claim { url, path: path.to_string(), alias: true });
        }
    }
    out
}

/// The claims of a parsed document.
pub fn claims_of(doc: &Document) -> Vec<Claim> {
    claims(&doc.path, doc.url.clone(), &doc.meta)
}

/// The claims of a document's outline (the same as of the parsed document).
pub fn claims_of_outline(doc: &document::Outline) -> Vec<Claim> {
    claims(&doc.path, doc.url.clone(), &doc.meta)
}

/// The claims of the content file at `path` from its front matter alone (no Markdown is
/// rendered: this runs over every document of a site).
pub fn claims_of_source(path: &str, source: &str, languages: &Languages) -> Result<Vec<Claim>> {
    let (block, _) = front_matter::split(source).map_err(|e| Error::content(path, e))?;
    let meta = match block {
        Some((format, block)) => front_matter::parse(format, block).map_err(|e| Error::content(path, e))?,
        None => FrontMatter::default(),
    };
    let url = document::locate(path, &meta, languages)?.url;
    Ok(claims(path, url, &meta))
}

/// Every claim of every document of `commit`. Documents that do not parse are skipped (their
/// problem is reported on its own).
pub fn claims_at(repo: &gix::Repository, commit: ObjectId) -> Result<Vec<Claim>> {
    let mut out = Vec::new();
    let languages = crate::config::SiteConfig::at(repo, commit).unwrap_or_default().languages();
    for (rel, blob) in source::files_under(repo, commit, "content")? {
        let path = format!("content/{rel}");
        if !document::is_document(&path) {
            continue;
        }
        let bytes = source::read_blob(repo, blob)?;
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        if let Ok(c) = claims_of_source(&path, text, &languages) {
            out.extend(c);
        }
    }
    Ok(out)
}

/// The collisions among `claims`: URLs claimed by two or more documents, and reserved URLs
/// claimed at all. A document may name its own URL among its aliases; that is no collision.
pub fn collisions(claims: &[Claim]) -> Vec<Collision> {
    let mut by_url: BTreeMap<&str, Vec<&Claim>> = BTreeMap::new();
    for c in claims {
        by_url.entry(c.url.as_str()).or_default().push(c);
    }
    let mut out = Vec::new();
    for (url, mut list) in by_url {
        list.sort_by(|a, b| (&a.path, a.alias).cmp(&(&b.path, b.alias)));
        list.dedup_by(|a, b| a.path == b.path);
        let paths: BTreeSet<&str> = list.iter().map(|c| c.path.as_str()).collect();
        let reserved = RESERVED.contains(&url);
        if paths.len() > 1 || reserved {
            out.push(Collision { url: url.to_string(), claims: list.into_iter().cloned().collect(), reserved });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(url: &str, path: &str, alias: bool) -> Claim {
        Claim { url: url.into(), path: path.into(), alias }
    }

    #[test]
    fn front_matter_alone_gives_the_claims() {
        let c = claims_of_source(
            "content/blog/x.md",
            "+++\nslug = \"Y\"\naliases = [\"/old/x\", \"../bad\"]\n+++\nbody",
            &Languages::default(),
        )
        .unwrap();
        assert_eq!(c, [claim("/blog/y/", "content/blog/x.md", false), claim("/old/x/", "content/blog/x.md", true)]);
        let parsed = document::parse(
            "content/blog/x.md",
            "+++\nslug = \"Y\"\naliases = [\"/old/x\"]\n+++\n",
            &Languages::default(),
        )
        .unwrap();
        assert_eq!(claims_of(&parsed), c);
        assert!(claims_of_source("content/x.md", "+++\ntitle = \n+++\n", &Languages::default()).is_err());
    }

    #[test]
    fn two_documents_on_one_url_collide() {
        let claims = [
            claim("/a/", "content/a.md", false),
            claim("/a/", "content/a/index.md", false),
            claim("/b/", "content/b.md", false),
            claim("/b/", "content/b.md", true),
            claim("/old/", "content/b.md", true),
            claim("/old/", "content/c.md", true),
            claim("/rss.xml", "content/feed.md", false),
        ];
        let found = collisions(&claims);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].to_string(), "URL /a/ is claimed by content/a.md and content/a/index.md");
        assert_eq!(
            found[1].to_string(),
            "URL /old/ is claimed by content/b.md (as an alias) and content/c.md (as an alias)"
        );
        assert_eq!(found[2].to_string(), "URL /rss.xml is the server's own; it cannot be claimed by content/feed.md");
    }
}
