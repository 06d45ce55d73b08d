//! Markdown to HTML with pulldown-cmark, GitHub-flavoured: tables, footnotes, strikethrough,
//! task lists, heading attributes, and an `id` on every heading (slug of its text, made unique)
//! so headings can be linked and listed in a table of contents. Fenced code blocks keep their
//! options for highlighting at render time ([`super::code_block`]); links to `@/path.md` are
//! collected (checked at push, resolved at render); shortcode placeholders
//! ([`super::shortcodes`]) pass through and stay out of the plain text.

use pulldown_cmark::{html, CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;

use super::code_block::CodeInfo;
use super::shortcodes::{CLOSE, OPEN};

/// Internal links start with this (Zola's syntax; Hugo's `ref` is rewritten to it).
pub const INTERNAL: &str = "@/";

/// A link to another document: `@/blog/post.md#anchor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target's path under `content/`, without the anchor.
    pub target: String,
    /// Line in the file.
    pub line: usize,
}

/// The summary marker, as in Zola and Hugo.
pub const MORE_MARKER: &str = "<!-- more -->";

/// A heading, for tables of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Heading {
    pub level: u8,
    pub id: String,
    pub title: String,
}

/// The repository paths an internal link's target (under `content/`, no anchor) may name: the
/// file itself when it names a Markdown file (Zola), else — Hugo's `ref "post"` — `post.md`,
/// the section `post/_index.md` or the bundle `post/index.md`.
pub fn link_candidates(target: &str) -> Vec<String> {
    let target = target.trim_matches('/');
    if target.ends_with(".md") {
        return vec![format!("content/{target}")];
    }
    if target.is_empty() {
        return vec!["content/_index.md".into()];
    }
    vec![format!("content/{target}.md"), format!("content/{target}/_index.md"), format!("content/{target}/index.md")]
}

/// What a link to the document at `path` may have been written as, besides the path itself:
/// Hugo's extension-less name (`content/blog/post.md`, `…/post/index.md` and
/// `…/post/_index.md` → `blog/post`).
pub fn link_base(path: &str) -> &str {
    let rel = path.strip_prefix("content/").unwrap_or(path);
    rel.strip_suffix("/_index.md")
        .or_else(|| rel.strip_suffix("/index.md"))
        .or_else(|| rel.strip_suffix(".md"))
        .unwrap_or(rel)
}

/// A rendered document.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub html: String,
    /// The part before `<!-- more -->`, if the marker is present.
    pub summary_html: Option<String>,
    pub toc: Vec<Heading>,
    pub word_count: usize,
    /// Plain text, for search.
    pub text: String,
    /// Internal links, in order.
    pub links: Vec<Link>,
    /// Problems with the line they are on (code block options).
    pub problems: Vec<(usize, String)>,
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_GFM
}

/// Render `markdown` whose first line is line `first_line` of its file.
pub fn render(markdown: &str, first_line: usize) -> Rendered {
    let mut out = Rendered::default();
    let mut extra = Extra {
        toc: Some(&mut out.toc),
        text: Some(&mut out.text),
        links: Some(&mut out.links),
        problems: Some(&mut out.problems),
    };
    out.html = render_html(markdown, first_line, &mut extra);
    out.word_count = out.text.split_whitespace().count();
    if let Some(pos) = markdown.find(MORE_MARKER) {
        out.summary_html = Some(render_html(&markdown[..pos], first_line, &mut Extra::default()));
    }
    out
}

/// Render `markdown` to HTML alone (a summary, a shortcode's body, a template's `markdown`).
pub fn to_html(markdown: &str) -> String {
    render_html(markdown, 1, &mut Extra::default())
}

/// What a render of `markdown` would find without rendering it: its internal links and the
/// problems of its code block options, each with its line (push validation reads every pushed
/// page; building HTML, text and headings there is work thrown away).
pub fn check(markdown: &str, first_line: usize) -> (Vec<Link>, Vec<(usize, String)>) {
    let mut links = Vec::new();
    let mut problems = Vec::new();
    let mut lines = Lines { text: markdown, first: first_line, at: 0, line: first_line };
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                if let Err(message) = CodeInfo::parse(&info) {
                    problems.push((lines.of(range.start), message));
                }
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                if let Some(target) = internal_target(&dest_url) {
                    links.push(Link { target, line: lines.of(range.start) });
                }
            }
            _ => {}
        }
    }
    (links, problems)
}

/// The target of an internal link's destination (`@/blog/post.md#x` → `blog/post.md`).
fn internal_target(dest_url: &str) -> Option<String> {
    let rest = dest_url.strip_prefix(INTERNAL)?;
    Some(rest.split('#').next().unwrap_or_default().to_string())
}

/// Line numbers of increasing byte offsets, counted once over the text.
struct Lines<'a> {
    text: &'a str,
    first: usize,
    at: usize,
    line: usize,
}

impl Lines<'_> {
    fn of(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset < self.at {
            // Offsets come in document order; one that goes back is counted from the start.
            self.at = 0;
            self.line = self.first;
        }
        self.line += self.text.as_bytes()[self.at..offset].iter().filter(|b| **b == b'\n').count();
        self.at = offset;
        self.line
    }
}

/// What a render collects beside the HTML, when asked.
#[derive(Default)]
struct Extra<'a> {
    toc: Option<&'a mut Vec<Heading>>,
    text: Option<&'a mut String>,
    links: Option<&'a mut Vec<Link>>,
    problems: Option<&'a mut Vec<(usize, String)>>,
}

fn render_html(markdown: &str, first_line: usize, extra: &mut Extra<'_>) -> String {
    let mut lines = Lines { text: markdown, first: first_line, at: 0, line: first_line };
    let (events, offsets): (Vec<Event>, Vec<usize>) =
        Parser::new_ext(markdown, options()).into_offset_iter().map(|(e, r)| (e, r.start)).unzip();
    let mut links = Vec::new();
    let mut problems = Vec::new();
    let mut used_ids: Vec<String> = Vec::new();
    let mut headings = Vec::new();
    let mut plain = String::new();
    let mut result: Vec<Event> = Vec::with_capacity(events.len());
    let mut i = 0;
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Heading { level, id, classes, attrs }) => {
                // Collect the heading's text to make its id.
                let mut j = i + 1;
                let mut title = String::new();
                while j < events.len() && !matches!(events[j], Event::End(TagEnd::Heading(_))) {
                    if let Event::Text(t) | Event::Code(t) = &events[j] {
                        title.push_str(t);
                    }
                    j += 1;
                }
                let base = id.as_ref().map(|s| s.to_string()).unwrap_or_else(|| slug::slugify(&title));
                let base = if base.is_empty() { "section".to_string() } else { base };
                let mut unique = base.clone();
                let mut n = 1;
                while used_ids.contains(&unique) {
                    unique = format!("{base}-{n}");
                    n += 1;
                }
                used_ids.push(unique.clone());
                headings.push(Heading { level: *level as u8, id: unique.clone(), title: title.clone() });
                result.push(Event::Start(Tag::Heading {
                    level: *level,
                    id: Some(CowStr::from(unique)),
                    classes: classes.clone(),
                    attrs: attrs.clone(),
                }));
                i += 1;
                continue;
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let mut code = String::new();
                let mut j = i + 1;
                while j < events.len() && !matches!(events[j], Event::End(TagEnd::CodeBlock)) {
                    if let Event::Text(t) = &events[j] {
                        code.push_str(t);
                    }
                    j += 1;
                }
                plain.push_str(&code);
                plain.push(' ');
                let block = match CodeInfo::parse(info) {
                    Ok(options) => options,
                    Err(message) => {
                        problems.push((lines.of(offsets[i]), message));
                        CodeInfo::default()
                    }
                };
                result.push(Event::Html(CowStr::from(block.to_html(&code))));
                i = j + 1;
                continue;
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. })
                if dest_url.starts_with(INTERNAL) =>
            {
                let target = internal_target(dest_url).unwrap_or_default();
                links.push(Link { target, line: lines.of(offsets[i]) });
            }
            Event::Text(t) if t.contains([OPEN, CLOSE]) => plain.push_str(&without_placeholders(t)),
            Event::Text(t) | Event::Code(t) => plain.push_str(t),
            // Inline ends join words; block ends separate them.
            Event::End(TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link | TagEnd::Image) => {}
            Event::SoftBreak | Event::HardBreak | Event::End(_) => plain.push(' '),
            _ => {}
        }
        result.push(events[i].clone());
        i += 1;
    }
    let mut html_out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut html_out, result.into_iter());
    if let Some(toc) = extra.toc.as_deref_mut() {
        *toc = headings;
    }
    if let Some(text) = extra.text.as_deref_mut() {
        *text = plain;
    }
    if let Some(out) = extra.links.as_deref_mut() {
        *out = links;
    }
    if let Some(out) = extra.problems.as_deref_mut() {
        *out = problems;
    }
    html_out
}

/// Text without shortcode placeholders (they stand for markup, not words).
fn without_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        match c {
            OPEN => inside = true,
            CLOSE => {
                inside = false;
                out.push(' ');
            }
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render1(markdown: &str) -> Rendered {
        render(markdown, 1)
    }

    #[test]
    fn code_blocks_keep_their_options_and_links_are_collected() {
        let r = render1("Text [a](@/blog/post.md#x) ![i](@/img.md)\n\n```rust,hl_lines=2\nfn a() {}\nlet b = 1 < 2;\n```\n\n```rust,bogus\nx\n```\n");
        assert!(r.html.contains("<pre data-lang=\"rust\" data-hl=\"2\"><code class=\"language-rust\">fn a() {}\nlet b = 1 &lt; 2;\n</code></pre>"), "{}", r.html);
        assert!(r.html.contains("href=\"@/blog/post.md#x\""));
        assert_eq!(
            r.links,
            [Link { target: "blog/post.md".into(), line: 1 }, Link { target: "img.md".into(), line: 1 }]
        );
        assert_eq!(r.problems, [(8, "unknown code block option \"bogus\"".to_string())]);
        assert!(r.text.contains("let b = 1 < 2;"));
    }

    #[test]
    fn check_finds_what_render_finds() {
        for markdown in [
            "Text [a](@/blog/post.md#x) ![i](@/img.md)\n\n```rust,hl_lines=2\nfn a() {}\n```\n\n```rust,bogus\nx\n```\n",
            "# T\n\n> quote [q](@/q.md)\n\n- [l](@/list.md)\n  [n](https://example.org/)\n\n[^1]: see [f](@/foot.md)\n\nx[^1]\n",
            "| a | b |\n|---|---|\n| [t](@/table.md) | `[c](@/code.md)` |\n\n```\n[in](@/fence.md)\n```\n",
            "",
        ] {
            let rendered = render(markdown, 3);
            assert_eq!(check(markdown, 3), (rendered.links, rendered.problems), "{markdown}");
        }
    }

    #[test]
    fn placeholders_stay_out_of_the_text() {
        let r = render1(&format!("Before {OPEN}0{CLOSE} after"));
        assert!(r.html.contains(&format!("{OPEN}0{CLOSE}")));
        assert_eq!(r.word_count, 2);
    }

    #[test]
    fn renders_gfm() {
        let r = render1("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ [^1]\n\n- [x] done\n\n[^1]: note\n");
        assert!(r.html.contains("<table>"), "{}", r.html);
        assert!(r.html.contains("<del>old</del>"));
        assert!(r.html.contains("checkbox"));
        assert!(r.html.contains("footnote"));
    }

    #[test]
    fn headings_get_unique_anchor_ids() {
        let r = render1("# Hello World\n\n## Hello World\n\n## Custom {#mine}\n");
        assert!(r.html.contains("<h1 id=\"hello-world\">"), "{}", r.html);
        assert!(r.html.contains("<h2 id=\"hello-world-1\">"));
        assert!(r.html.contains("<h2 id=\"mine\">"));
        assert_eq!(r.toc.len(), 3);
        assert_eq!(r.toc[1].level, 2);
    }

    #[test]
    fn summary_stops_at_the_more_marker() {
        let r = render1("Intro *text*.\n\n<!-- more -->\n\nRest.");
        assert_eq!(r.summary_html.as_deref().map(str::trim), Some("<p>Intro <em>text</em>.</p>"));
        assert!(r.html.contains("Rest."));
        assert_eq!(r.word_count, 3);
    }

    #[test]
    fn odd_and_huge_inputs_do_not_panic() {
        let deep = "> ".repeat(5000) + "x";
        let nested = "[".repeat(10_000) + "]".repeat(10_000).as_str();
        let long = "word ".repeat(200_000);
        for input in [deep.as_str(), nested.as_str(), long.as_str(), "\0\u{feff}#", "#", "```\nunclosed", "<script>x"] {
            let _ = render1(input);
        }
    }
}
