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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
///
/// What each page's front matter said is remembered in `.git/whispercms/pages-cache` by the
/// file's size and modification time (as the stat cache of [`worktree`] remembers hashes): after
/// the first time, listing 10,000 pages reads only the ones that changed.
pub fn list(ws: &Workspace) -> Result<Vec<PageInfo>> {
    let root = ws.dir().join("content");
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let cache_file = ws.repository().git_dir().join("whispercms/pages-cache");
    let cache = ListCache::load(&cache_file);
    let mut fresh = ListCache::default();
    let now = worktree::now_nanos();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(Error::fs(&dir))? {
            let entry = entry.map_err(Error::fs(&dir))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(Error::fs(&path))?;
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("md") {
                continue;
            }
            let rel = relative(ws.dir(), &path)?;
            let (size, mtime) = (meta.len(), worktree::mtime_nanos(&meta));
            let page = match cache.0.get(&rel) {
                Some(c) if c.size == size && c.mtime == mtime => c.info.clone(),
                _ => info(&rel, &read_front(&path)?),
            };
            // An edit within the same clock tick would not change the time: not remembered yet.
            if now - mtime >= worktree::RACY_NANOS {
                fresh.0.insert(rel, Cached { size, mtime, info: page.clone() });
            }
            out.push(page);
        }
    }
    if fresh != cache {
        fresh.save(&cache_file);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// One remembered page file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Cached {
    size: u64,
    mtime: i128,
    info: PageInfo,
}

/// The list's cache: path → what was read, by size and time.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ListCache(std::collections::HashMap<String, Cached>);

impl ListCache {
    /// A missing, damaged or foreign cache is an empty one (it is only a cache).
    fn load(path: &Path) -> ListCache {
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Best effort: a cache that cannot be written is read again next time.
    fn save(&self, path: &Path) {
        let Ok(bytes) = serde_json::to_vec(self) else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = crate::worktree::temporary_beside(path);
        if std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).is_err() {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(path = %path.display(), "the page list's cache was not written");
        }
    }
}

/// The start of a page, up to the end of its front matter: all the list needs. Reading 4 KB
/// instead of the whole file is most of the list's cost on a 10,000-page site.
fn read_front(path: &Path) -> Result<String> {
    use std::io::Read as _;
    const HEAD: u64 = 4096;
    let mut file = std::fs::File::open(path).map_err(Error::fs(path))?;
    let mut bytes = Vec::with_capacity(HEAD as usize);
    (&mut file).take(HEAD).read_to_end(&mut bytes).map_err(Error::fs(path))?;
    let closed = |b: &[u8]| match b.get(..3) {
        Some(open @ (b"+++" | b"---")) => {
            b.windows(4).skip(3).any(|w| w[0] == b'\n' && &w[1..] == open) // a closing line
        }
        _ => true, // no front matter: nothing more is needed
    };
    if bytes.len() as u64 == HEAD && !closed(&bytes) {
        file.read_to_end(&mut bytes).map_err(Error::fs(path))?;
    }
    // A cut in the middle of a character is only ever in the body, past the front matter.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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

    /// Replace the YAML front matter's text (a page whose front matter is YAML).
    pub fn set_yaml(&mut self, yaml: &str) -> Result<()> {
        match &mut self.front {
            Front::Yaml(y) => {
                *y = yaml.replace("\r\n", "\n");
                Ok(())
            }
            _ => Err(Error::Page { path: self.path.clone(), reason: "the front matter is not YAML".into() }),
        }
    }

    fn has_alias(&self, url: &str) -> bool {
        match &self.front {
            Front::Toml(_) => self.get_list("aliases").unwrap_or_default().iter().any(|a| a == url),
            Front::Yaml(y) => y.contains(url),
            Front::None => false,
        }
    }

    /// Add `url` to the page's `aliases`.
    fn add_alias(&mut self, url: &str) -> Result<()> {
        if let Front::Yaml(y) = &mut self.front {
            if y.lines().any(|l| l.starts_with("aliases:")) {
                return Err(Error::Page {
                    path: self.path.clone(),
                    reason: format!(
                        "its YAML front matter has aliases already: add {url:?} to them by hand, then move it"
                    ),
                });
            }
            if !y.is_empty() && !y.ends_with('\n') {
                y.push('\n');
            }
            y.push_str(&format!("aliases: [{url:?}]\n"));
            return Ok(());
        }
        let mut aliases = self.get_list("aliases").unwrap_or_default();
        aliases.push(url.to_string());
        self.set("aliases", Value::List(aliases))
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
        put(doc.as_table_mut(), key, new);
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

/// Set `key` to `value` in `table`, keeping the comment and spacing around the old value (the
/// one way the app writes a TOML value: pages' front matter, `site.toml`, `users.toml`).
pub(crate) fn put(table: &mut toml_edit::Table, key: &str, value: impl Into<toml_edit::Value>) {
    let new = value.into();
    match table.get_mut(key).and_then(|i| i.as_value_mut()) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = new;
            *old.decor_mut() = decor;
        }
        None => {
            table.insert(key, toml_edit::value(new));
        }
    }
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Where the page is now.
    pub path: String,
    /// Its address before.
    pub old_url: String,
    /// Its address now.
    pub new_url: String,
    /// Whether the old address was added to `aliases` (it redirects to the new one).
    pub alias_added: bool,
}

/// The folder a page bundle's `index.md` stands for, if `path` is one.
fn bundle_dir(path: &str) -> Option<&str> {
    path.strip_suffix("/index.md")
}

/// Move (or rename) the page at `from` to `to`, both `content/….md`. Its old address keeps
/// working: when the address changes, the old one is added to the page's `aliases`, which the
/// server answers with a redirect. A page bundle (`…/index.md`) moves with its folder; a
/// single-file page may become one (`content/a.md` → `content/a/index.md`, same address). A
/// section's own page (`_index.md`) does not move alone.
pub fn move_page(ws: &Workspace, from: &str, to: &str) -> Result<Moved> {
    let bad = |path: &str, reason: &str| Error::Page { path: path.into(), reason: reason.into() };
    let (src, dst) = (page_file(ws, from)?, page_file(ws, to)?);
    if from.ends_with("/_index.md") || to.ends_with("/_index.md") {
        return Err(bad(from, "a section's own page stays in its section folder"));
    }
    if bundle_dir(from).is_some() && bundle_dir(to).is_none() {
        return Err(bad(to, "a page bundle moves as a folder: give the new folder's index.md"));
    }
    if dst.exists() || bundle_dir(to).is_some_and(|d| ws.dir().join(d).exists()) {
        return Err(bad(to, "something is already there"));
    }
    let text = std::fs::read_to_string(&src).map_err(Error::fs(&src))?;
    let old_url = url_of(from, &text);
    let new_url = url_of(to, &text);
    let mut page = Page::parse(from, &text)?;
    let alias_added = old_url != new_url && !page.has_alias(&old_url);
    if alias_added {
        page.add_alias(&old_url)?;
    }
    page.path = to.to_string();
    match (bundle_dir(from), bundle_dir(to)) {
        (Some(a), Some(b)) => {
            let (a, b) = (ws.dir().join(a), ws.dir().join(b));
            if let Some(parent) = b.parent() {
                std::fs::create_dir_all(parent).map_err(Error::fs(parent))?;
            }
            std::fs::rename(&a, &b).map_err(Error::fs(&a))?;
            page.write(ws)?;
        }
        _ => {
            page.write(ws)?;
            std::fs::remove_file(&src).map_err(Error::fs(&src))?;
            remove_empty_parents(ws, &src);
        }
    }
    Ok(Moved { path: to.to_string(), old_url, new_url, alias_added })
}

/// Move (or rename) the section folder `from` (`content/recipes`) to `to` (`content/food`), with
/// every page and file in it. Each page whose address changes keeps its old one as an alias.
/// Returns what moved, page by page.
pub fn move_section(ws: &Workspace, from: &str, to: &str) -> Result<Vec<Moved>> {
    let bad = |path: &str, reason: &str| Error::Page { path: path.into(), reason: reason.into() };
    let (from, to) = (from.trim_end_matches('/'), to.trim_end_matches('/'));
    let index_of = |dir: &str| format!("{dir}/_index.md");
    page_file(ws, &index_of(from))?;
    page_file(ws, &index_of(to))?;
    if from == "content" || !ws.dir().join(index_of(from)).is_file() {
        return Err(bad(from, "not a section folder (a folder with its own _index.md)"));
    }
    if to.starts_with(&format!("{from}/")) {
        return Err(bad(to, "a section cannot move inside itself"));
    }
    if ws.dir().join(to).exists() || ws.dir().join(format!("{to}.md")).exists() {
        return Err(bad(to, "something is already there"));
    }
    // Every page's text and address before the move.
    let before: Vec<(String, String)> = list(ws)?
        .into_iter()
        .filter(|p| p.path.starts_with(&format!("{from}/")))
        .map(|p| {
            let text = std::fs::read_to_string(ws.dir().join(&p.path)).map_err(Error::fs(ws.dir().join(&p.path)))?;
            Ok((p.path, text))
        })
        .collect::<Result<_>>()?;
    let (src, dst) = (ws.dir().join(from), ws.dir().join(to));
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(Error::fs(parent))?;
    }
    std::fs::rename(&src, &dst).map_err(Error::fs(&src))?;
    let mut out = Vec::new();
    for (old_path, text) in before {
        let new_path = format!("{to}{}", &old_path[from.len()..]);
        let (old_url, new_url) = (url_of(&old_path, &text), url_of(&new_path, &text));
        let mut page = Page::parse(&new_path, &text)?;
        let alias_added = old_url != new_url && !page.has_alias(&old_url);
        if alias_added {
            page.add_alias(&old_url)?;
            page.write(ws)?;
        }
        out.push(Moved { path: new_path, old_url, new_url, alias_added });
    }
    remove_empty_parents(ws, &src.join("_index.md"));
    Ok(out)
}

/// Delete the page at `path` (a bundle with its folder). A section's own page goes only when
/// the section has no other page. *History* can bring it back.
pub fn delete_page(ws: &Workspace, path: &str) -> Result<()> {
    let file = page_file(ws, path)?;
    if !file.is_file() {
        return Err(Error::Page { path: path.into(), reason: "no such page".into() });
    }
    if let Some(section) = path.strip_suffix("/_index.md") {
        let others = list(ws)?.into_iter().any(|p| p.path != path && p.path.starts_with(&format!("{section}/")));
        if others {
            return Err(Error::Page {
                path: path.into(),
                reason: "the section still has pages: move or delete them first".into(),
            });
        }
    }
    match bundle_dir(path) {
        Some(dir) => {
            let dir = ws.dir().join(dir);
            std::fs::remove_dir_all(&dir).map_err(Error::fs(&dir))?;
        }
        None => std::fs::remove_file(&file).map_err(Error::fs(&file))?,
    }
    remove_empty_parents(ws, &file);
    Ok(())
}

/// Remove the folders above `file` that are left empty, up to `content/`.
fn remove_empty_parents(ws: &Workspace, file: &Path) {
    let stop = ws.dir().join("content");
    let mut parent = file.parent();
    while let Some(p) = parent.filter(|p| p.starts_with(&stop) && *p != stop) {
        match std::fs::remove_dir(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // a bundle's own folder, gone
            Err(_) => break,                                         // not empty
        }
        parent = p.parent();
    }
}

/// The address the site gives the page at `path` with this text (`/` if it cannot be read). A
/// translation (`post.fr.md`) is placed under its language's prefix; whether the site declares
/// the language is the check's business, not the address's.
pub fn url_of(path: &str, text: &str) -> String {
    use site_runtime::content::{document, language::Languages};
    let mut languages = Languages::default();
    let stem = path.strip_suffix(".md").unwrap_or(path);
    if let Some((_, code)) = stem.rsplit_once('/').map_or(stem, |(_, f)| f).rsplit_once('.') {
        if site_runtime::content::language::valid_code(code) && code != languages.default {
            languages.others.push(code.to_string());
        }
    }
    document::parse(path, text, &languages).map(|d| d.url).unwrap_or_else(|_| "/".into())
}

/// A new section titled `title` inside the section folder `parent` (`content`): its folder (the
/// title's slug) with its own page, `_index.md`. Not written yet.
pub fn new_section(ws: &Workspace, parent: &str, title: &str) -> Result<Page> {
    let parent = parent.trim_end_matches('/');
    if !(parent == "content" || parent.starts_with("content/")) {
        return Err(Error::Page { path: parent.into(), reason: "sections live under content/".into() });
    }
    let slug = site_runtime::content::document::slug_component(&title.to_lowercase().replace(' ', "-"));
    if slug.is_empty() || slug.starts_with('_') {
        return Err(Error::Page { path: parent.into(), reason: format!("{title:?} gives no folder name") });
    }
    let folder = format!("{parent}/{slug}");
    if ws.dir().join(&folder).exists() || ws.dir().join(format!("{folder}.md")).exists() {
        return Err(Error::Page { path: folder, reason: "something of that name is already there".into() });
    }
    let mut page = Page { path: format!("{folder}/_index.md"), front: Front::None, body: "\n".into() };
    page.set("title", Value::Text(title.into()))?;
    page.set("sort_by", Value::Text("date".into()))?;
    Ok(page)
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
        let languages = site_runtime::content::language::Languages::default();
        let doc = site_runtime::content::document::parse("content/blog/hello.md", &text, &languages).unwrap();
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

    use crate::fixture::site;

    #[test]
    fn a_moved_page_keeps_its_old_address_as_an_alias() {
        let (_tmp, ws) = site();
        let moved = move_page(&ws, "content/about.md", "content/company/about-us.md").unwrap();
        assert!(moved.alias_added);
        assert_eq!((moved.old_url.as_str(), moved.new_url.as_str()), ("/about/", "/company/about-us/"));
        assert!(!ws.dir().join("content/about.md").exists());
        let page = Page::read(&ws, "content/company/about-us.md").unwrap();
        assert_eq!(page.get_list("aliases"), Some(vec!["/about/".to_string()]));
        // Moving back: the old address is its own again, and the alias already there is kept once.
        let back = move_page(&ws, "content/company/about-us.md", "content/about.md").unwrap();
        assert!(back.alias_added);
        assert!(!ws.dir().join("content/company").exists(), "the emptied folder is gone");
        // The server's own checks accept the result (no address claimed twice).
        ws.save("moves", &crate::fixture::author()).unwrap();
        assert_eq!(ws.check("main").unwrap(), vec![]);
        // Refusals leave everything in place.
        assert!(move_page(&ws, "content/about.md", "content/blog/_index.md").is_err());
        assert!(move_page(&ws, "content/about.md", "../x.md").is_err());
        assert!(move_page(&ws, "content/about.md", "content/blog/index.md").is_err(), "content/blog/ is taken");
        assert!(ws.dir().join("content/about.md").exists());
    }

    #[test]
    fn a_bundle_moves_with_its_files_and_yaml_gets_its_alias_as_text() {
        let (_tmp, ws) = site();
        let dir = ws.dir().join("content/trip");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.md"), "---\ntitle: Trip\n---\nPhotos.\n").unwrap();
        std::fs::write(dir.join("photo.jpg"), b"jpeg").unwrap();
        let moved = move_page(&ws, "content/trip/index.md", "content/travel/iceland/index.md").unwrap();
        assert!(moved.alias_added);
        assert!(ws.dir().join("content/travel/iceland/photo.jpg").exists());
        let text = std::fs::read_to_string(ws.dir().join("content/travel/iceland/index.md")).unwrap();
        assert_eq!(text, format!("---\ntitle: Trip\naliases: [{:?}]\n---\nPhotos.\n", moved.old_url));
        assert_eq!(url_of("content/travel/iceland/index.md", &text), moved.new_url);
        delete_page(&ws, "content/travel/iceland/index.md").unwrap();
        assert!(!ws.dir().join("content/travel").exists());
    }

    #[test]
    fn the_list_cache_follows_edits_and_survives_damage() {
        let (_tmp, ws) = site();
        let path = ws.dir().join("content/about.md");
        let set_old = |p: &Path| {
            let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
            std::fs::File::options().write(true).open(p).unwrap().set_modified(old).unwrap();
        };
        set_old(&path);
        let first = list(&ws).unwrap();
        let cache = ws.repository().git_dir().join("whispercms/pages-cache");
        assert!(std::fs::read_to_string(&cache).unwrap().contains("content/about.md"));
        assert_eq!(list(&ws).unwrap(), first, "from the cache, the same");
        // An edit (a new size and time) is read again.
        std::fs::write(&path, "+++\ntitle = \"Changed title\"\n+++\n").unwrap();
        set_old(&path);
        assert!(list(&ws).unwrap().iter().any(|p| p.title == "Changed title"));
        // A damaged cache is an empty one.
        std::fs::write(&cache, "{not json").unwrap();
        assert!(list(&ws).unwrap().iter().any(|p| p.title == "Changed title"));
        // A page edited within the racy window is never remembered, so never stale.
        std::fs::write(&path, "+++\ntitle = \"Just now\"\n+++\n").unwrap();
        assert!(list(&ws).unwrap().iter().any(|p| p.title == "Just now"));
        assert!(!std::fs::read_to_string(&cache).unwrap().contains("Just now"));
    }

    #[test]
    fn a_new_section_is_a_folder_with_its_own_page() {
        let (_tmp, ws) = site();
        let section = new_section(&ws, "content", "Recipes & Notes").unwrap();
        assert_eq!(section.path, "content/recipes-notes/_index.md");
        section.write(&ws).unwrap();
        let page = Page::new_in(&ws, "content/recipes-notes", "Bread").unwrap();
        page.write(&ws).unwrap();
        let author = crate::fixture::author();
        ws.save("section", &author).unwrap();
        assert_eq!(ws.check("main").unwrap(), vec![]);
        assert!(list(&ws).unwrap().iter().any(|p| p.section && p.title == "Recipes & Notes"));
        assert!(new_section(&ws, "content", "Recipes & Notes").is_err(), "already there");
        assert!(new_section(&ws, "static", "x").is_err());
        assert!(new_section(&ws, "content", "???").is_err());
    }

    #[test]
    fn the_list_reads_only_the_front_matter_and_long_front_matter_whole() {
        let (_tmp, ws) = site();
        let long = format!("+++\ntitle = \"Long\"\ndescription = \"{}\"\n+++\nBody\n", "x".repeat(9000));
        std::fs::write(ws.dir().join("content/long.md"), &long).unwrap();
        let body = format!("+++\ntitle = \"Big body\"\ndraft = true\n+++\n{}", "é".repeat(5000));
        std::fs::write(ws.dir().join("content/big.md"), &body).unwrap();
        std::fs::write(
            ws.dir().join("content/broken.md"),
            format!("+++\ntitle = \"never closed\"\n{}", "y\n".repeat(3000)),
        )
        .unwrap();
        let list = list(&ws).unwrap();
        let find = |p: &str| list.iter().find(|i| i.path == p).unwrap().clone();
        assert_eq!(find("content/long.md").title, "Long");
        let big = find("content/big.md");
        assert!(big.draft && big.title == "Big body" && big.problem.is_none(), "{big:?}");
        assert!(find("content/broken.md").problem.is_some());
    }

    #[test]
    fn a_section_moves_with_its_pages_and_every_address_keeps_working() {
        let (_tmp, ws) = site();
        let moved = move_section(&ws, "content/blog", "content/journal").unwrap();
        assert_eq!(moved.len(), 4, "the section's own page and its three posts");
        assert!(moved.iter().all(|m| m.alias_added && m.new_url.starts_with("/journal/")), "{moved:?}");
        assert!(!ws.dir().join("content/blog").exists());
        let hello = Page::read(&ws, "content/journal/hello-world.md").unwrap();
        assert_eq!(hello.get_list("aliases"), Some(vec!["/blog/hello-world/".to_string()]));
        let author = crate::fixture::author();
        ws.save("move", &author).unwrap();
        assert_eq!(ws.check("main").unwrap(), vec![], "the server accepts it: no address claimed twice");
        assert!(move_section(&ws, "content/journal", "content/journal/inner").is_err());
        assert!(move_section(&ws, "content/about", "content/x").is_err(), "not a section");
        assert!(
            move_section(&ws, "content/journal", "content/about").is_err()
                || !ws.dir().join("content/about.md").exists()
        );
        assert!(move_section(&ws, "content/journal", "../x").is_err());
    }

    #[test]
    fn a_section_page_goes_only_when_its_section_is_empty() {
        let (_tmp, ws) = site();
        let err = delete_page(&ws, "content/blog/_index.md").unwrap_err().to_string();
        assert!(err.contains("still has pages"), "{err}");
        assert!(delete_page(&ws, "content/nope.md").is_err());
        delete_page(&ws, "content/about.md").unwrap();
        assert!(!ws.dir().join("content/about.md").exists());
    }
}
