//! Pages: the content tree, and one page read and written with its front matter kept as the
//! writer wrote it.
//!
//! TOML front matter (`+++`) is edited through `toml_edit`, so a form that changes the title
//! leaves comments, key order, formatting and keys the app does not know exactly as they were.
//! YAML front matter (`---`) is kept as text: the form shows it read-only and the writer edits
//! it as text (no YAML library keeps comments through an edit).

use std::path::Path;

use site_runtime::content::front_matter::{self, Format};

use crate::worktree;
use crate::{Error, Result, Workspace};

/// A page or section in the content tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    /// Its path in the site (`content/blog/hello.md`).
    pub path: String,
    /// The title (the file name when the page has none).
    pub title: String,
    /// A draft is not published.
    pub draft: bool,
    /// The date, as written (RFC 3339).
    pub date: Option<String>,
    /// A section's own page (`_index.md`).
    pub section: bool,
    /// Why its front matter could not be read, if it could not.
    pub problem: Option<String>,
}

/// Every page under `content/`, in path order.
pub fn list(ws: &Workspace) -> Result<Vec<PageInfo>> {
    let root = ws.dir().join("content");
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(Error::fs(&dir))? {
            let entry = entry.map_err(Error::fs(&dir))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("md") {
                continue;
            }
            let rel = relative(ws.dir(), &path)?;
            let text = std::fs::read_to_string(&path).map_err(Error::fs(&path))?;
            out.push(info(&rel, &text));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn relative(root: &Path, path: &Path) -> Result<String> {
    let rel =
        path.strip_prefix(root).map_err(|_| Error::NotASite(format!("{} is outside the site", path.display())))?;
    Ok(rel.to_string_lossy().replace('\\', "/"))
}

fn info(path: &str, text: &str) -> PageInfo {
    let name = path.rsplit('/').next().unwrap_or(path).trim_end_matches(".md").to_string();
    let section = name == "_index";
    let mut page = PageInfo { path: path.to_string(), title: name, draft: false, date: None, section, problem: None };
    let parsed = front_matter::split(text).and_then(|(block, _)| match block {
        Some((format, block)) => front_matter::parse(format, block).map(Some),
        None => Ok(None),
    });
    match parsed {
        Ok(Some(meta)) => {
            if let Some(title) = meta.title {
                page.title = title;
            }
            page.draft = meta.draft;
            page.date = meta.date.map(|d| d.to_string());
        }
        Ok(None) => {}
        Err(e) => page.problem = Some(e.0),
    }
    page
}

/// A front matter value a form sets.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (title, slug, description).
    Text(String),
    /// A flag (draft).
    Bool(bool),
    /// A date or date-time, written as a TOML date (`2024-05-01` or RFC 3339).
    Date(String),
    /// A list of strings (tags, aliases).
    List(Vec<String>),
}

/// The front matter of a page, as written.
#[derive(Debug, Clone)]
enum Front {
    Toml(toml_edit::DocumentMut),
    Yaml(String),
    None,
}

/// One page, open for editing.
#[derive(Debug, Clone)]
pub struct Page {
    /// Its path in the site.
    pub path: String,
    front: Front,
    /// The Markdown after the front matter.
    pub body: String,
}

impl Page {
    /// Read the page at `path` (`content/…`).
    pub fn read(ws: &Workspace, path: &str) -> Result<Page> {
        let file = page_file(ws, path)?;
        let text = std::fs::read_to_string(&file).map_err(Error::fs(&file))?;
        Page::parse(path, &text)
    }

    /// A page from its text.
    pub fn parse(path: &str, text: &str) -> Result<Page> {
        let bad = |reason: String| Error::Page { path: path.to_string(), reason };
        let (block, body) = front_matter::split(text).map_err(|e| bad(e.0))?;
        let front = match block {
            Some((Format::Toml, block)) => {
                Front::Toml(block.parse::<toml_edit::DocumentMut>().map_err(|e| bad(format!("front matter: {e}")))?)
            }
            Some((Format::Yaml, block)) => Front::Yaml(block.to_string()),
            None => Front::None,
        };
        Ok(Page { path: path.to_string(), front, body: body.to_string() })
    }

    /// A front matter value as text (strings, numbers, dates, flags), if the page has it.
    pub fn get(&self, key: &str) -> Option<String> {
        let Front::Toml(doc) = &self.front else { return None };
        let item = doc.get(key)?;
        match item.as_value()? {
            toml_edit::Value::String(s) => Some(s.value().clone()),
            other => Some(other.to_string().trim().to_string()),
        }
    }

    /// A list value (tags), if the page has it.
    pub fn get_list(&self, key: &str) -> Option<Vec<String>> {
        let Front::Toml(doc) = &self.front else { return None };
        let array = doc.get(key)?.as_array()?;
        Some(array.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
    }

    /// Whether the front matter is TOML (editable as a form).
    pub fn has_form(&self) -> bool {
        matches!(self.front, Front::Toml(_) | Front::None)
    }

    /// The YAML front matter as text (edited as text).
    pub fn yaml(&self) -> Option<&str> {
        match &self.front {
            Front::Yaml(y) => Some(y),
            _ => None,
        }
    }

    /// Set a front matter value, keeping everything else as it is.
    pub fn set(&mut self, key: &str, value: Value) -> Result<()> {
        let bad = |reason: String| Error::Page { path: self.path.clone(), reason };
        if matches!(self.front, Front::None) {
            self.front = Front::Toml(toml_edit::DocumentMut::new());
        }
        let Front::Toml(doc) = &mut self.front else {
            return Err(bad("the front matter is YAML; edit it as text".into()));
        };
        if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') || key.is_empty() {
            return Err(bad(format!("{key:?} is not a front matter key")));
        }
        let new: toml_edit::Value = match value {
            Value::Text(s) => s.into(),
            Value::Bool(b) => b.into(),
            Value::Date(d) => {
                let datetime: toml_edit::Datetime =
                    d.trim().parse().map_err(|_| bad(format!("{d:?} is not a date (e.g. 2024-05-01)")))?;
                datetime.into()
            }
            Value::List(items) => toml_edit::Value::Array(items.into_iter().collect()),
        };
        match doc.get_mut(key).and_then(|i| i.as_value_mut()) {
            // Keep the comment or spacing around the old value.
            Some(old) => {
                let decor = old.decor().clone();
                *old = new;
                *old.decor_mut() = decor;
            }
            None => {
                doc.insert(key, toml_edit::value(new));
            }
        }
        Ok(())
    }

    /// Remove a front matter key.
    pub fn remove(&mut self, key: &str) {
        if let Front::Toml(doc) = &mut self.front {
            doc.remove(key);
        }
    }

    /// The page's text, as it will be written.
    pub fn to_text(&self) -> String {
        match &self.front {
            Front::Toml(doc) => {
                let block = doc.to_string();
                let nl = if block.is_empty() || block.ends_with('\n') { "" } else { "\n" };
                format!("+++\n{block}{nl}+++\n{}", self.body)
            }
            Front::Yaml(y) => {
                let nl = if y.is_empty() || y.ends_with('\n') { "" } else { "\n" };
                format!("---\n{y}{nl}---\n{}", self.body)
            }
            Front::None => self.body.clone(),
        }
    }

    /// Write the page into the folder (atomically).
    pub fn write(&self, ws: &Workspace) -> Result<()> {
        let file = page_file(ws, &self.path)?;
        worktree::write_file(&file, self.to_text().as_bytes(), gix::objs::tree::EntryKind::Blob)
    }

    /// A new page titled `title` in the section folder `section` (`content/blog`), from the
    /// site's archetype for that section (`archetypes/blog.md`, else `archetypes/default.md`,
    /// Hugo's convention), else a plain draft. Its file name is the title's slug; not written yet.
    pub fn new_in(ws: &Workspace, section: &str, title: &str) -> Result<Page> {
        let section = section.trim_end_matches('/');
        if !(section == "content" || section.starts_with("content/")) {
            return Err(Error::Page { path: section.into(), reason: "pages live under content/".into() });
        }
        let slug = site_runtime::content::document::slug_component(&title.to_lowercase().replace(' ', "-"));
        if slug.is_empty() || slug == "_index" {
            return Err(Error::Page { path: section.into(), reason: format!("{title:?} gives no file name") });
        }
        let path = format!("{section}/{slug}.md");
        if ws.dir().join(&path).exists() {
            return Err(Error::Page { path, reason: "a page of that name is already there".into() });
        }
        let now = jiff::Timestamp::now().to_string();
        let kind = section.rsplit('/').next().unwrap_or("default");
        let archetype = [format!("archetypes/{kind}.md"), "archetypes/default.md".to_string()]
            .into_iter()
            .find_map(|a| std::fs::read_to_string(ws.dir().join(a)).ok());
        let mut page = match archetype {
            // Hugo's archetype placeholders that a static file can hold.
            Some(text) => Page::parse(
                &path,
                &text.replace("{{ .Title }}", title).replace("{{ .Date }}", &now).replace("{{ .Name }}", &slug),
            )?,
            None => Page { path: path.clone(), front: Front::None, body: "\n".into() },
        };
        page.path = path;
        if page.has_form() {
            page.set("title", Value::Text(title.into()))?;
            if page.get("date").is_none() {
                page.set("date", Value::Date(now))?;
            }
            if page.get("draft").is_none() {
                page.set("draft", Value::Bool(true))?;
            }
        }
        Ok(page)
    }
}

/// The file of `path`, refusing anything outside `content/`.
fn page_file(ws: &Workspace, path: &str) -> Result<std::path::PathBuf> {
    let safe = path.starts_with("content/")
        && path.ends_with(".md")
        && !path.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\\'));
    if !safe {
        return Err(Error::Page { path: path.into(), reason: "not a page path (content/….md)".into() });
    }
    Ok(ws.dir().join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "+++\n# The post's title, as shown in lists\ntitle = \"Hello\"   # inline note\n\
                        date = 2024-05-01\nweird_key = { nested = 1 }\ntags = [\"a\"]\n+++\n\nBody *here*.\n";

    #[test]
    fn an_edit_keeps_comments_order_and_unknown_keys() {
        let mut page = Page::parse("content/blog/hello.md", TEXT).unwrap();
        assert_eq!(page.get("title").as_deref(), Some("Hello"));
        assert_eq!(page.get("date").as_deref(), Some("2024-05-01"));
        assert_eq!(page.get_list("tags"), Some(vec!["a".to_string()]));
        page.set("title", Value::Text("Hello, \"world\"".into())).unwrap();
        page.set("draft", Value::Bool(true)).unwrap();
        page.set("tags", Value::List(vec!["a".into(), "b".into()])).unwrap();
        let text = page.to_text();
        assert_eq!(
            text,
            "+++\n# The post's title, as shown in lists\ntitle = 'Hello, \"world\"'   # inline note\n\
             date = 2024-05-01\nweird_key = { nested = 1 }\ntags = [\"a\", \"b\"]\ndraft = true\n+++\n\nBody *here*.\n"
        );
        // What the server reads agrees.
        let doc = site_runtime::content::document::parse("content/blog/hello.md", &text).unwrap();
        assert_eq!(doc.title(), "Hello, \"world\"");
        // Unchanged, the text round-trips exactly.
        assert_eq!(Page::parse("x", TEXT).unwrap().to_text(), TEXT);
    }

    #[test]
    fn yaml_is_kept_as_text_and_bad_input_is_an_error() {
        let yaml = "---\ntitle: Hi # c\n---\nBody\n";
        let mut page = Page::parse("content/x.md", yaml).unwrap();
        assert_eq!(page.yaml(), Some("title: Hi # c\n"));
        assert!(page.set("title", Value::Text("x".into())).is_err());
        assert_eq!(page.to_text(), yaml);
        let mut page = Page::parse("content/x.md", TEXT).unwrap();
        assert!(page.set("date", Value::Date("someday".into())).is_err());
        assert!(page.set("bad key", Value::Bool(true)).is_err());
        assert!(Page::parse("content/x.md", "+++\ntitle = \n+++\n").is_err());
        let err = Page::parse("content/x.md", "+++\nnever closed\n").unwrap_err().to_string();
        assert!(err.contains("never closed") && err.starts_with("content/x.md"), "{err}");
    }
}
