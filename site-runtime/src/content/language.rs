//! Which language a content file is in, as Zola and Hugo tell it: by the file name
//! (`post.fr.md`, `_index.fr.md`, `index.fr.md`) or by a top-level directory named after a
//! language (`content/fr/post.md`, Hugo's per-language content directories). The default
//! language has no URL prefix; every other one lives under `/<code>/`.

/// The languages of a site: the default one and the others `site.toml` declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Languages {
    pub default: String,
    pub others: Vec<String>,
}

impl Default for Languages {
    fn default() -> Self {
        Languages { default: "en".into(), others: Vec::new() }
    }
}

/// Where a content file sits in its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The language code.
    pub lang: String,
    /// The path the file would have in the default language (`content/blog/post.md` for both
    /// `content/blog/post.fr.md` and `content/fr/blog/post.md`): translations share it.
    pub key: String,
    /// The URL prefix of the language (`/fr`, empty for the default).
    pub prefix: String,
    /// The path under `content/` URLs are made from, without the language's marks.
    pub rel: String,
}

impl Languages {
    /// Whether `code` is one of the site's languages.
    pub fn knows(&self, code: &str) -> bool {
        code == self.default || self.others.iter().any(|o| o == code)
    }

    /// The URL prefix of `lang` (empty for the default language).
    pub fn prefix(&self, lang: &str) -> String {
        if lang == self.default {
            String::new()
        } else {
            format!("/{lang}")
        }
    }

    /// The language a site URL is in, and the URL without its prefix (`/fr/blog/` → `fr`,
    /// `/blog/`).
    pub fn of_url<'a>(&'a self, url: &'a str) -> (&'a str, &'a str) {
        for other in &self.others {
            if let Some(rest) = url.strip_prefix('/').and_then(|u| u.strip_prefix(other.as_str())) {
                if rest.is_empty() || rest.starts_with('/') {
                    return (other, if rest.is_empty() { "/" } else { rest });
                }
            }
        }
        (&self.default, url)
    }

    /// Place the content file at `path` (`content/…`). A name marked with a language the site
    /// does not declare (`post.de.md` without `de` in `site.toml`) is an error, so a translation
    /// is never published as a page of its own by mistake.
    pub fn place(&self, path: &str) -> Result<Placed, String> {
        let rel = path.strip_prefix("content/").unwrap_or(path);
        let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut lang = self.default.clone();
        let mut file = file.to_string();
        if let Some(stem) = file.strip_suffix(".md") {
            if let Some((name, code)) = stem.rsplit_once('.') {
                if self.knows(code) {
                    lang = code.to_string();
                    file = format!("{name}.md");
                } else if looks_like_language(code) {
                    return Err(format!(
                        "{code:?} in the file name marks a language this site does not have; add [languages.{code}] to site.toml (languages: {})",
                        self.all().join(", ")
                    ));
                }
            }
        }
        let mut dir = dir.to_string();
        let first = dir.split('/').next().unwrap_or_default().to_string();
        if !first.is_empty() && self.others.contains(&first) {
            if lang != self.default && lang != first {
                return Err(format!("the file name says {lang} but the directory says {first}"));
            }
            lang = first.clone();
            dir = dir[first.len()..].trim_start_matches('/').to_string();
        }
        let rel = if dir.is_empty() { file } else { format!("{dir}/{file}") };
        Ok(Placed { prefix: self.prefix(&lang), key: format!("content/{rel}"), lang, rel })
    }

    /// Every language code, the default first.
    pub fn all(&self) -> Vec<String> {
        std::iter::once(self.default.clone()).chain(self.others.iter().cloned()).collect()
    }
}

/// A two-letter lowercase code, optionally with a region (`fr`, `pt-br`): what a language mark
/// in a file name looks like.
fn looks_like_language(code: &str) -> bool {
    let (lang, region) = code.split_once('-').unwrap_or((code, ""));
    lang.len() == 2
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty() || (2..=4).contains(&region.len()) && region.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether `code` can name a language in `site.toml` (and a URL prefix).
pub fn valid_code(code: &str) -> bool {
    let (lang, region) = code.split_once('-').unwrap_or((code, ""));
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty() || (2..=4).contains(&region.len()) && region.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs() -> Languages {
        Languages { default: "en".into(), others: vec!["fr".into(), "pt-br".into()] }
    }

    #[test]
    fn places_files_by_name_and_by_directory() {
        let l = langs();
        let p = l.place("content/blog/post.fr.md").unwrap();
        assert_eq!(
            (p.lang.as_str(), p.key.as_str(), p.prefix.as_str(), p.rel.as_str()),
            ("fr", "content/blog/post.md", "/fr", "blog/post.md")
        );
        let p = l.place("content/fr/blog/post.md").unwrap();
        assert_eq!((p.lang.as_str(), p.key.as_str(), p.rel.as_str()), ("fr", "content/blog/post.md", "blog/post.md"));
        let p = l.place("content/blog/_index.pt-br.md").unwrap();
        assert_eq!((p.lang.as_str(), p.key.as_str()), ("pt-br", "content/blog/_index.md"));
        let p = l.place("content/_index.fr.md").unwrap();
        assert_eq!((p.rel.as_str(), p.prefix.as_str()), ("_index.md", "/fr"));
        let p = l.place("content/blog/post.md").unwrap();
        assert_eq!((p.lang.as_str(), p.prefix.as_str()), ("en", ""));
        // The default language's mark is allowed and means the default.
        assert_eq!(l.place("content/post.en.md").unwrap().key, "content/post.md");
        // Not language marks.
        assert_eq!(l.place("content/notes.old.md").unwrap().rel, "notes.old.md");
        assert_eq!(l.place("content/v1.2.md").unwrap().rel, "v1.2.md");
    }

    #[test]
    fn unknown_or_conflicting_marks_are_errors() {
        let l = langs();
        assert!(l.place("content/post.de.md").unwrap_err().contains("[languages.de]"));
        assert!(l.place("content/fr/post.pt-br.md").is_err());
        assert!(Languages::default().place("content/post.fr.md").is_err());
    }

    #[test]
    fn urls_know_their_language() {
        let l = langs();
        assert_eq!(l.of_url("/fr/blog/"), ("fr", "/blog/"));
        assert_eq!(l.of_url("/fr/"), ("fr", "/"));
        assert_eq!(l.of_url("/fr"), ("fr", "/"));
        assert_eq!(l.of_url("/french/"), ("en", "/french/"));
        assert_eq!(l.of_url("/blog/"), ("en", "/blog/"));
        assert!(
            valid_code("fr") && valid_code("pt-br") && valid_code("ast") && !valid_code("F") && !valid_code("../x")
        );
    }
}
