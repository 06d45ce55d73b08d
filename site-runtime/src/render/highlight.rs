//! Syntax highlighting of the code blocks a page's stored HTML holds
//! (`<pre data-lang=…>`, written by [`crate::content::code_block`]), when the page is rendered:
//! syntect with two-face's grammars, spans with `z-` classes (the colours live in
//! `/highlight.css`, generated from the site's chosen themes, so the Content-Security-Policy stays
//! without inline styles), line numbers and highlighted lines as Zola and Hugo draw them.
//!
//! Highlighting happens at render, not at indexing: a build of many pages pays nothing for it,
//! a theme change needs no re-index, and a bounded process-wide cache keyed by the block's bytes
//! means a block is highlighted once however many snapshots render it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use syntect::html::{line_tokens_to_classed_spans, ClassStyle};
use syntect::parsing::{ParseState, ScopeStack, SyntaxSet};
use syntect::util::LinesWithEndings;

use crate::content::code_block::stored_ranges;

/// Class prefix of highlighted spans (Zola's).
const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "z-" };
/// Blocks larger than this are shown plain (a generated file pasted whole).
const MAX_BLOCK: usize = 256 * 1024;
/// Lines longer than this are shown plain (minified code).
const MAX_LINE: usize = 16 * 1024;
/// The cache of highlighted blocks holds at most this many bytes, then starts over.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(two_face::syntax::extra_newlines);
/// Whether someone took on loading [`SYNTAXES`] ahead of the first code block.
static PREPARING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `true` once per process: for the caller that is to call [`prepare`] off the request path.
pub fn needs_preparing() -> bool {
    !PREPARING.swap(true, std::sync::atomic::Ordering::Relaxed)
}

/// Load the syntax definitions now: about 10 ms, once per process, that the first request
/// showing a code block paid otherwise (14 ms for a page's first request after a restart).
pub fn prepare() {
    LazyLock::force(&SYNTAXES);
}

struct Cache {
    blocks: HashMap<u64, Arc<str>>,
    bytes: usize,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache { blocks: HashMap::new(), bytes: 0 }));

/// `html` with every stored code block highlighted; unchanged (borrowed) when it has none.
pub fn blocks(html: &str) -> std::borrow::Cow<'_, str> {
    const START: &str = "<pre data-";
    if !html.contains(START) {
        return std::borrow::Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len() * 2);
    let mut rest = html;
    while let Some(at) = rest.find(START) {
        out.push_str(&rest[..at]);
        let block = &rest[at..];
        let Some(end) = block.find("</code></pre>").map(|e| e + "</code></pre>".len()) else {
            out.push_str(block);
            rest = "";
            break;
        };
        out.push_str(&cached(&block[..end]));
        rest = &block[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn cached(block: &str) -> Arc<str> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    block.hash(&mut hasher);
    let key = hasher.finish();
    if let Some(hit) = CACHE.lock().ok().and_then(|c| c.blocks.get(&key).cloned()) {
        return hit;
    }
    let highlighted: Arc<str> = Arc::from(block_html(block).as_str());
    if let Ok(mut cache) = CACHE.lock() {
        if cache.bytes + highlighted.len() > CACHE_BYTES {
            cache.blocks.clear();
            cache.bytes = 0;
        }
        cache.bytes += highlighted.len();
        cache.blocks.insert(key, highlighted.clone());
    }
    highlighted
}

/// One stored block (`<pre data-…><code…>escaped</code></pre>`) highlighted.
fn block_html(block: &str) -> String {
    let Some(open_end) = block.find('>') else { return block.to_string() };
    let pre_attrs = &block[4..open_end];
    let lang = attribute(pre_attrs, "data-lang");
    let numbers = attribute(pre_attrs, "data-linenos").and_then(|n| n.parse::<usize>().ok());
    let marked = attribute(pre_attrs, "data-hl").map(|v| stored_ranges(&v)).unwrap_or_default();
    let hidden = attribute(pre_attrs, "data-hide").map(|v| stored_ranges(&v)).unwrap_or_default();
    let after_pre = &block[open_end + 1..];
    let Some(code_start) = after_pre.find('>').map(|i| i + 1) else { return block.to_string() };
    if !after_pre.starts_with("<code") || code_start + "</code></pre>".len() > after_pre.len() {
        return block.to_string();
    }
    let code_open = &after_pre[..code_start];
    let body = &after_pre[code_start..after_pre.len() - "</code></pre>".len()];
    let code = unescape(body);
    let syntax = lang
        .as_deref()
        .filter(|_| code.len() <= MAX_BLOCK)
        .and_then(|l| SYNTAXES.find_syntax_by_token(l))
        .filter(|s| s.name != "Plain Text");
    let mut state = syntax.map(|s| (ParseState::new(s), ScopeStack::new()));
    let mut out = String::with_capacity(body.len() * 3);
    out.push_str("<pre");
    if state.is_some() {
        out.push_str(" class=\"z-code\"");
    }
    if let Some(lang) = &lang {
        out.push_str(&format!(" data-lang=\"{}\"", crate::theme::html_escape(lang)));
    }
    if numbers.is_some() {
        out.push_str(" data-linenos=\"\"");
    }
    out.push('>');
    out.push_str(code_open);
    let lined = numbers.is_some() || !marked.is_empty() || !hidden.is_empty();
    let within = |n: usize, ranges: &[(usize, usize)]| ranges.iter().any(|(a, b)| (*a..=*b).contains(&n));
    for (i, line) in LinesWithEndings::from(&code).enumerate() {
        let n = i + 1;
        let html = match state.as_mut() {
            Some((parse, stack)) if line.len() <= MAX_LINE => highlight_line(line, parse, stack),
            _ => crate::theme::html_escape(line.trim_end_matches('\n')),
        };
        if within(n, &hidden) {
            continue;
        }
        if !lined {
            out.push_str(&html);
            out.push('\n');
            continue;
        }
        let tag = if within(n, &marked) { "mark" } else { "span" };
        out.push_str(&format!("<{tag} class=\"line\">"));
        if let Some(start) = numbers {
            out.push_str(&format!("<span class=\"ln\" data-n=\"{}\" aria-hidden=\"true\"></span>", start + i));
        }
        out.push_str(&html);
        out.push_str(&format!("</{tag}>\n"));
    }
    if !code.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out.push_str("</code></pre>");
    out
}

/// One line highlighted, its spans closed at its end and reopened on the next line (so lines
/// can be wrapped, numbered and marked one by one); without its newline.
fn highlight_line(line: &str, parse: &mut ParseState, stack: &mut ScopeStack) -> String {
    let mut out = String::new();
    for scope in stack.as_slice() {
        out.push_str("<span class=\"");
        out.push_str(&classes(*scope));
        out.push_str("\">");
    }
    let ops = match parse.parse_line(line, &SYNTAXES) {
        Ok(ops) => ops,
        Err(_) => return crate::theme::html_escape(line.trim_end_matches('\n')),
    };
    match line_tokens_to_classed_spans(line, &ops, CLASS_STYLE, stack) {
        Ok((html, _)) => out.push_str(&html.replace('\n', "")),
        Err(_) => return crate::theme::html_escape(line.trim_end_matches('\n')),
    }
    for _ in stack.as_slice() {
        out.push_str("</span>");
    }
    out
}

/// A scope's classes as syntect writes them (`source.rust` → `z-source z-rust`).
fn classes(scope: syntect::parsing::Scope) -> String {
    let name = scope.build_string();
    let mut out = String::with_capacity(name.len() + 8);
    for (i, atom) in name.split('.').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str("z-");
        out.push_str(atom);
    }
    out
}

/// The value of `name="…"` among an element's attributes.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let start = attrs.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = attrs[start..].find('"')? + start;
    Some(unescape(&attrs[start..end]))
}

/// Undo the HTML escaping of stored code.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// The stylesheet for the highlighting: `light`'s colours, and `dark`'s when the reader's system
/// prefers a dark scheme. An unknown theme name is an error naming the known ones.
pub fn stylesheet(light: &str, dark: Option<&str>) -> Result<String, String> {
    let themes = two_face::theme::extra();
    let find = |name: &str| {
        two_face::theme::EmbeddedLazyThemeSet::theme_names()
            .iter()
            .find(|t| t.as_name().eq_ignore_ascii_case(name))
            .map(|t| themes.get(*t))
            .ok_or_else(|| format!("unknown highlight theme {name:?}; known: {}", theme_names().join(", ")))
    };
    let css =
        |name: &str| syntect::html::css_for_theme_with_class_style(find(name)?, CLASS_STYLE).map_err(|e| e.to_string());
    let mut out = css(light)?;
    if let Some(dark) = dark {
        out.push_str("@media (prefers-color-scheme: dark) {\n");
        out.push_str(&css(dark)?);
        out.push_str("}\n");
    }
    out.push_str(LINE_CSS);
    Ok(out)
}

/// The names of the highlight themes.
pub fn theme_names() -> Vec<&'static str> {
    two_face::theme::EmbeddedLazyThemeSet::theme_names().iter().map(|t| t.as_name()).filter(|n| *n != "ansi").collect()
}

/// Line numbers (from `data-n`, so copying code never copies them) and marked lines.
const LINE_CSS: &str = "pre .line { display: inline-block; min-width: 100%; }\n\
pre mark.line { background: rgba(255, 200, 0, .18); color: inherit; }\n\
pre .ln::before { content: attr(data-n); display: inline-block; width: 3ch; margin-right: 1.5ch; text-align: right; opacity: .5; }\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::code_block::CodeInfo;

    fn stored(info: &str, code: &str) -> String {
        CodeInfo::parse(info).unwrap().to_html(code)
    }

    #[test]
    fn highlights_with_classes_only() {
        let html = blocks(&stored("rust", "fn main() {\n    let s = \"a < b\";\n}\n")).into_owned();
        assert!(html.starts_with("<pre class=\"z-code\" data-lang=\"rust\"><code class=\"language-rust\">"), "{html}");
        assert!(html.contains("<span class=\"z-storage z-type z-function z-rust\">fn</span>"), "{html}");
        assert!(html.contains("&quot;a &lt; b&quot;") || html.contains("a &lt; b"), "{html}");
        assert!(!html.contains("style="), "{html}");
        // Balanced spans.
        assert_eq!(html.matches("<span").count(), html.matches("</span>").count(), "{html}");
    }

    #[test]
    fn toml_from_the_extra_grammars() {
        let html = blocks(&stored("toml", "[section]\nkey = 1\n")).into_owned();
        assert!(html.contains("z-toml"), "{html}");
    }

    #[test]
    fn numbers_marks_and_hides_lines_and_keeps_spans_per_line() {
        let code = "/* one\ntwo */\nlet x = 1;\nhidden();\n";
        let html = blocks(&stored("js,linenos,linenostart=10,hl_lines=2,hide_lines=4", code)).into_owned();
        let lines: Vec<&str> = html.lines().filter(|l| l.contains("class=\"line\"")).collect();
        assert_eq!(lines.len(), 3, "{html}");
        assert!(lines[0].contains("data-n=\"10\""));
        assert!(lines[1].starts_with("<mark class=\"line\">") && lines[1].contains("data-n=\"11\""), "{html}");
        assert!(!html.contains("hidden()") && !html.contains(">hidden<"), "{html}");
        for line in &lines[1..] {
            let line = line.trim_end_matches("</code></pre>");
            assert_eq!(line.matches("<span").count(), line.matches("</span>").count(), "{line}");
        }
    }

    #[test]
    fn unknown_languages_and_plain_blocks_stay_plain() {
        let block = stored("nosuchlang", "a < b\n");
        let html = blocks(&block).into_owned();
        assert_eq!(html, "<pre data-lang=\"nosuchlang\"><code class=\"language-nosuchlang\">a &lt; b\n</code></pre>\n");
        let plain = "<pre><code>x</code></pre>";
        assert!(matches!(blocks(plain), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn broken_stored_html_does_not_panic() {
        for html in
            ["<pre data-", "<pre data-lang=\"rust\">", "<pre data-lang=\"rust\"><code>x", "<pre data-x></code></pre>"]
        {
            let _ = blocks(html);
        }
    }

    #[test]
    fn stylesheet_for_light_and_dark() {
        let css = stylesheet("InspiredGitHub", Some("base16-ocean.dark")).unwrap();
        assert!(css.contains(".z-code") && css.contains("prefers-color-scheme: dark"));
        assert!(stylesheet("nope", None).unwrap_err().contains("InspiredGitHub"));
    }
}
