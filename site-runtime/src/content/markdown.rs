//! Markdown to HTML with pulldown-cmark, GitHub-flavoured: tables, footnotes, strikethrough,
//! task lists, heading attributes, and an `id` on every heading (slug of its text, made unique)
//! so headings can be linked and listed in a table of contents.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;

/// The summary marker, as in Zola and Hugo.
pub const MORE_MARKER: &str = "<!-- more -->";

/// A heading, for tables of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Heading {
    pub level: u8,
    pub id: String,
    pub title: String,
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

/// Render `markdown`.
pub fn render(markdown: &str) -> Rendered {
    let mut out = Rendered::default();
    out.html = render_html(markdown, Some(&mut out.toc), Some(&mut out.text));
    out.word_count = out.text.split_whitespace().count();
    if let Some(pos) = markdown.find(MORE_MARKER) {
        out.summary_html = Some(render_html(&markdown[..pos], None, None));
    }
    out
}

fn render_html(markdown: &str, toc: Option<&mut Vec<Heading>>, text: Option<&mut String>) -> String {
    let events: Vec<Event> = Parser::new_ext(markdown, options()).collect();
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
    if let Some(toc) = toc {
        *toc = headings;
    }
    if let Some(text) = text {
        *text = plain;
    }
    html_out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gfm() {
        let r = render("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ [^1]\n\n- [x] done\n\n[^1]: note\n");
        assert!(r.html.contains("<table>"), "{}", r.html);
        assert!(r.html.contains("<del>old</del>"));
        assert!(r.html.contains("checkbox"));
        assert!(r.html.contains("footnote"));
    }

    #[test]
    fn headings_get_unique_anchor_ids() {
        let r = render("# Hello World\n\n## Hello World\n\n## Custom {#mine}\n");
        assert!(r.html.contains("<h1 id=\"hello-world\">"), "{}", r.html);
        assert!(r.html.contains("<h2 id=\"hello-world-1\">"));
        assert!(r.html.contains("<h2 id=\"mine\">"));
        assert_eq!(r.toc.len(), 3);
        assert_eq!(r.toc[1].level, 2);
    }

    #[test]
    fn summary_stops_at_the_more_marker() {
        let r = render("Intro *text*.\n\n<!-- more -->\n\nRest.");
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
            let _ = render(input);
        }
    }
}
