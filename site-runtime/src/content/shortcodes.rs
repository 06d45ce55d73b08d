//! Shortcodes in a document's Markdown source, in Zola's and Hugo's syntaxes, found before the
//! Markdown is rendered and replaced by placeholders the renderer expands later (with the theme's
//! `shortcodes/<name>.html` templates, the plugins' shortcodes and the built-ins):
//!
//! - Zola: `{{ name(key="v", n=3) }}` and `{% name(key="v") %}body{% end %}`;
//! - Hugo: `{{< name "positional" key="v" >}}`, `{{% name %}}body{{% /name %}}`, self-closing
//!   `{{< name />}}`;
//! - escapes, shown as written: Zola `{{/* name() */}}`, Hugo `{{</* name */>}}`;
//! - Hugo's `ref` and `relref` become `@/path` links to the named document.
//!
//! Code (fenced, indented, inline) is left alone. What opens like a shortcode but does not parse,
//! a body never closed, a closing tag without its opening and a shortcode inside another's body
//! are errors with the line: a page is never rendered with a half-read shortcode in it.
//!
//! Written by hand: no crate reads these two template dialects' call syntax, and what is needed
//! here is their call grammar only (names, literal arguments, bodies), not the languages.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Opens a placeholder in the rendered HTML: `OPEN <index> CLOSE` (Unicode private-use
/// characters, removed from the source first so a writer cannot forge one).
pub const OPEN: char = '\u{E000}';
/// Closes a placeholder.
pub const CLOSE: char = '\u{E001}';

/// At most this many shortcodes per document.
const MAX_CALLS: usize = 1_000;

/// One shortcode call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub name: String,
    /// Named arguments.
    pub args: Map<String, Value>,
    /// Positional arguments (Hugo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positional: Vec<Value>,
    /// The text between the opening and the closing tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Line in the file (1-based).
    pub line: usize,
}

/// A source with its shortcodes replaced by placeholders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scanned {
    pub markdown: String,
    pub calls: Vec<Call>,
}

/// A shortcode that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Find the shortcodes of `source` (the Markdown body of the document at `doc_dir`, the
/// directory under `content/`; `first_line` is the body's first line in the file).
pub fn scan(source: &str, doc_dir: &str, first_line: usize) -> Result<Scanned, SyntaxError> {
    let clean;
    let source = if source.contains([OPEN, CLOSE]) {
        clean = source.replace([OPEN, CLOSE], "");
        clean.as_str()
    } else {
        source
    };
    if !source.contains("{{") && !source.contains("{%") {
        return Ok(Scanned { markdown: source.to_string(), calls: Vec::new() });
    }
    let code = code_ranges(source);
    let hugo_closings = hugo_closings(source);
    let line_of = |at: usize| first_line + source[..at].matches('\n').count();
    let mut out = Scanned { markdown: String::with_capacity(source.len()), calls: Vec::new() };
    let mut at = 0;
    while let Some(found) = next_opening(source, at, &code) {
        out.markdown.push_str(&source[at..found]);
        let err = |message: String| SyntaxError { line: line_of(found), message };
        let tag = read_tag(&source[found..]).map_err(err)?;
        let mut end = found + tag.len;
        match tag.kind {
            TagKind::Escaped(text) => out.markdown.push_str(&text),
            TagKind::Close(name) => {
                return Err(err(format!("closing tag of {name:?} without its opening")));
            }
            TagKind::Open { syntax, name, args, positional, self_closing } => {
                if syntax == Syntax::Hugo && (name == "ref" || name == "relref") {
                    let target =
                        positional.first().and_then(Value::as_str).or_else(|| args.get("path").and_then(Value::as_str));
                    let target = target.ok_or_else(|| err(format!("{name} needs the path of a document")))?;
                    out.markdown.push_str(&link_target(target, doc_dir));
                    at = end;
                    continue;
                }
                let closing = match syntax {
                    Syntax::ZolaBody => Some(CloseAt::ZolaEnd),
                    Syntax::Hugo if !self_closing && hugo_closings.contains(&name.as_str()) => Some(CloseAt::Hugo),
                    _ => None,
                };
                let mut body = None;
                if let Some(closing) = closing {
                    let found = find_close(source, end, &code, &name, closing)
                        .map_err(|(at, message)| SyntaxError { line: line_of(at), message })?;
                    match found {
                        Some((body_range, after)) => {
                            let body_line = line_of(body_range.start);
                            body = Some(scan(&source[body_range], doc_dir, body_line)?.markdown);
                            end = after;
                        }
                        None if closing == CloseAt::ZolaEnd => {
                            return Err(err(format!("{{% {name}(…) %}} is never closed by {{% end %}}")));
                        }
                        None => {}
                    }
                }
                if out.calls.len() == MAX_CALLS {
                    return Err(err(format!("more than {MAX_CALLS} shortcodes in one document")));
                }
                out.markdown.push(OPEN);
                out.markdown.push_str(&out.calls.len().to_string());
                out.markdown.push(CLOSE);
                out.calls.push(Call { name, args, positional, body, line: line_of(found) });
            }
        }
        at = end;
    }
    out.markdown.push_str(&source[at..]);
    Ok(out)
}

/// The `@/` link to `target` as a document at `doc_dir` names it: absolute (`/blog/x.md`) from
/// `content/`, otherwise from the document's directory; `..` and `.` resolved, an anchor kept.
pub fn link_target(target: &str, doc_dir: &str) -> String {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let mut parts: Vec<&str> =
        if path.starts_with('/') { Vec::new() } else { doc_dir.split('/').filter(|p| !p.is_empty()).collect() };
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut link = format!("@/{}", parts.join("/"));
    if let Some(anchor) = anchor {
        link.push('#');
        link.push_str(anchor);
    }
    link
}

/// Byte ranges of code (blocks and spans), where nothing is a shortcode.
fn code_ranges(source: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    for (event, range) in Parser::new_ext(source, Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES).into_offset_iter()
    {
        match event {
            Event::Start(Tag::CodeBlock(_)) | Event::Code(_) => ranges.push(range),
            _ => {}
        }
    }
    ranges
}

fn in_code(at: usize, code: &[Range<usize>]) -> Option<usize> {
    code.iter().find(|r| r.contains(&at)).map(|r| r.end)
}

/// The next `{{` or `{%` at or after `from` that is outside code.
fn next_opening(source: &str, from: usize, code: &[Range<usize>]) -> Option<usize> {
    let mut at = from;
    loop {
        let rel = source[at..].find('{')?;
        let pos = at + rel;
        if let Some(end) = in_code(pos, code) {
            at = end.max(pos + 1);
            continue;
        }
        let next = source[pos + 1..].chars().next();
        if matches!(next, Some('{') | Some('%')) && looks_like_shortcode(&source[pos..]) {
            return Some(pos);
        }
        at = pos + 1;
    }
}

/// Whether the text opens like a shortcode: `{{<`, `{{%`, `{{/*`, or `{{ name(` / `{% name(` /
/// `{% end %}` (Zola). `{{ variable }}` in prose is text, as in Zola.
fn looks_like_shortcode(text: &str) -> bool {
    if text.starts_with("{{<") || text.starts_with("{{%") || text.starts_with("{{/*") {
        return true;
    }
    let rest = text[2..].trim_start_matches([' ', '\t']);
    if text.starts_with("{%") && rest.starts_with("end") && rest[3..].trim_start().starts_with("%}") {
        return true;
    }
    let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    name_len > 0 && rest[name_len..].starts_with('(')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    ZolaInline,
    ZolaBody,
    Hugo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseAt {
    ZolaEnd,
    Hugo,
}

enum TagKind {
    Open { syntax: Syntax, name: String, args: Map<String, Value>, positional: Vec<Value>, self_closing: bool },
    Close(String),
    Escaped(String),
}

struct TagRead {
    kind: TagKind,
    len: usize,
}

/// Read the tag at the start of `text` (which [`looks_like_shortcode`]).
fn read_tag(text: &str) -> Result<TagRead, String> {
    // Escapes: `{{/* x() */}}` → `{{ x() }}`, `{{</* x */>}}` → `{{< x >}}`.
    for (open, close, shown_open, shown_close) in
        [("{{</*", "*/>}}", "{{<", ">}}"), ("{{%/*", "*/%}}", "{{%", "%}}"), ("{{/*", "*/}}", "{{", "}}")]
    {
        if let Some(rest) = text.strip_prefix(open) {
            let end = rest
                .find(close)
                .filter(|e| !rest[..*e].contains('\n'))
                .ok_or("an escaped shortcode is never closed")?;
            return Ok(TagRead {
                kind: TagKind::Escaped(format!("{shown_open}{}{shown_close}", &rest[..end])),
                len: open.len() + end + close.len(),
            });
        }
    }
    for (open, close) in [("{{<", ">}}"), ("{{%", "%}}")] {
        if let Some(rest) = text.strip_prefix(open) {
            let end = find_unquoted(rest, close)
                .ok_or_else(|| format!("shortcode opened with {open} is never closed by {close}"))?;
            let inner = rest[..end].trim();
            let len = open.len() + end + close.len();
            if let Some(name) = inner.strip_prefix('/') {
                return Ok(TagRead { kind: TagKind::Close(name.trim().to_string()), len });
            }
            let (inner, self_closing) = match inner.strip_suffix('/') {
                Some(i) => (i.trim_end(), true),
                None => (inner, false),
            };
            let (name, args, positional) = hugo_call(inner)?;
            return Ok(TagRead {
                kind: TagKind::Open { syntax: Syntax::Hugo, name, args, positional, self_closing },
                len,
            });
        }
    }
    let (syntax, close) = if text.starts_with("{{") { (Syntax::ZolaInline, "}}") } else { (Syntax::ZolaBody, "%}") };
    let rest = &text[2..];
    let end = find_unquoted(rest, close).ok_or_else(|| format!("shortcode is never closed by {close}"))?;
    let inner = rest[..end].trim();
    let len = 2 + end + close.len();
    if syntax == Syntax::ZolaBody && inner == "end" {
        return Ok(TagRead { kind: TagKind::Close("end".into()), len });
    }
    let (name, args) = zola_call(inner)?;
    Ok(TagRead { kind: TagKind::Open { syntax, name, args, positional: Vec::new(), self_closing: false }, len })
}

/// The offset of `needle` in `text` outside quotes, on the same few lines.
fn find_unquoted(text: &str, needle: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut newlines = 0;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if text[i..].starts_with(needle) => return Some(i),
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None => {}
        }
        if c == '\n' {
            newlines += 1;
            // A call spans a few lines at most; beyond that the opening was never closed.
            if newlines > 20 {
                return None;
            }
        }
    }
    None
}

/// A body found: its byte range, and where the closing tag ends.
type Closed = (Range<usize>, usize);

/// A Hugo call: name, named arguments, positional arguments.
type HugoCall = (String, Map<String, Value>, Vec<Value>);

/// Find the closing tag of `name` after `from`: the body's range and where the closing tag
/// ends. Another shortcode inside the body is an error (nesting is not supported).
fn find_close(
    source: &str,
    from: usize,
    code: &[Range<usize>],
    name: &str,
    closing: CloseAt,
) -> Result<Option<Closed>, (usize, String)> {
    let mut at = from;
    let mut inner: Option<(usize, String)> = None;
    while let Some(pos) = next_opening(source, at, code) {
        let tag = read_tag(&source[pos..]).map_err(|e| (pos, e))?;
        let closes = match &tag.kind {
            TagKind::Close(closed) => match closing {
                CloseAt::ZolaEnd => closed == "end" && source[pos..].starts_with("{%"),
                CloseAt::Hugo => closed == name && source[pos..].starts_with("{{"),
            },
            _ => false,
        };
        if closes {
            if let Some((inner_at, inner)) = inner {
                return Err((inner_at, format!("{inner:?} inside the body of {name:?}: shortcodes do not nest")));
            }
            return Ok(Some((from..pos, pos + tag.len)));
        }
        match tag.kind {
            // Hugo's links are fine in a body: they are rewritten with it.
            TagKind::Open { syntax: Syntax::Hugo, name: other, .. } if other == "ref" || other == "relref" => {}
            TagKind::Open { name: other, .. } | TagKind::Close(other) => {
                inner.get_or_insert((pos, other));
            }
            TagKind::Escaped(_) => {}
        }
        at = pos + tag.len;
    }
    Ok(None)
}

/// The names Hugo closing tags (`{{< /name >}}`, `{{% /name %}}`) name in `source`: a Hugo
/// call has a body only if its name is among them (so calls without one cost no look-ahead).
fn hugo_closings(source: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for open in ["{{< /", "{{% /", "{{</", "{{%/"] {
        for (i, _) in source.match_indices(open) {
            let rest = &source[i + open.len()..];
            let rest = rest.trim_start();
            let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
            if n > 0 && !names.contains(&&rest[..n]) {
                names.push(&rest[..n]);
            }
        }
    }
    names
}

/// `name(key=value, …)`.
fn zola_call(inner: &str) -> Result<(String, Map<String, Value>), String> {
    let mut p = Cursor { text: inner, at: 0 };
    let name = p.identifier().ok_or_else(|| format!("{inner:?} is not a shortcode call (name(key=value, …))"))?;
    p.spaces();
    p.eat("(").ok_or_else(|| format!("{name}: expected ( after the name"))?;
    let mut args = Map::new();
    p.spaces();
    if p.eat(")").is_none() {
        loop {
            p.spaces();
            let key = p.identifier().ok_or_else(|| format!("{name}: expected an argument name"))?;
            p.spaces();
            p.eat("=").ok_or_else(|| format!("{name}: expected = after {key}"))?;
            p.spaces();
            let value = p
                .value()
                .ok_or_else(|| format!("{name}: the value of {key} is not a string, number, boolean or list"))?;
            args.insert(key.to_string(), value);
            p.spaces();
            if p.eat(",").is_some() {
                continue;
            }
            p.eat(")").ok_or_else(|| format!("{name}: expected , or ) after {key}"))?;
            break;
        }
    }
    p.spaces();
    if !p.rest().is_empty() {
        return Err(format!("{name}: unexpected {:?} after the call", p.rest()));
    }
    Ok((name.to_string(), args))
}

/// `name "positional" key="value" …`.
fn hugo_call(inner: &str) -> Result<HugoCall, String> {
    let mut p = Cursor { text: inner, at: 0 };
    p.spaces();
    let name = p.hugo_name().ok_or_else(|| format!("{inner:?} does not start with a shortcode name"))?;
    let mut args = Map::new();
    let mut positional = Vec::new();
    loop {
        p.spaces();
        if p.rest().is_empty() {
            break;
        }
        let save = p.at;
        if let Some(key) = p.identifier() {
            if p.eat("=").is_some() {
                let value = p.value().ok_or_else(|| format!("{name}: the value of {key} is not readable"))?;
                args.insert(key.to_string(), value);
                continue;
            }
            p.at = save;
        }
        let value = p.value().ok_or_else(|| format!("{name}: cannot read the argument {:?}", p.rest()))?;
        positional.push(value);
        if positional.len() > 32 {
            return Err(format!("{name}: too many arguments"));
        }
    }
    if !args.is_empty() && !positional.is_empty() {
        return Err(format!("{name}: Hugo shortcodes take named or positional arguments, not both"));
    }
    Ok((name.to_string(), args, positional))
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn spaces(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> Option<()> {
        self.rest().starts_with(token).then(|| self.at += token.len())
    }

    fn identifier(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if n == 0 || n > 64 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        self.at += n;
        Some(&rest[..n])
    }

    /// Hugo names may hold `-` and `/` (`{{< my-code >}}`, `{{< folder/name >}}`); ours may not
    /// leave the shortcodes directory, so only `-` is kept.
    fn hugo_name(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
        if n == 0 || n > 64 {
            return None;
        }
        self.at += n;
        Some(&rest[..n])
    }

    fn value(&mut self) -> Option<Value> {
        self.value_within(0)
    }

    /// A value; lists nest at most 8 deep.
    fn value_within(&mut self, depth: usize) -> Option<Value> {
        for quote in ['"', '\'', '`'] {
            if self.eat(&quote.to_string()).is_some() {
                let rest = self.rest();
                let mut text = String::new();
                let mut chars = rest.char_indices();
                while let Some((i, c)) = chars.next() {
                    if c == quote {
                        self.at += i + 1;
                        return Some(Value::String(text));
                    }
                    if c == '\\' && quote == '"' {
                        let (_, escaped) = chars.next()?;
                        text.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                    } else {
                        text.push(c);
                    }
                }
                return None;
            }
        }
        if depth < 8 && self.eat("[").is_some() {
            let mut items = Vec::new();
            loop {
                self.spaces();
                if self.eat("]").is_some() {
                    return Some(Value::Array(items));
                }
                items.push(self.value_within(depth + 1)?);
                self.spaces();
                if self.eat(",").is_none() {
                    self.spaces();
                    self.eat("]")?;
                    return Some(Value::Array(items));
                }
                if items.len() > 256 {
                    return None;
                }
            }
        }
        let rest = self.rest();
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')))
            .unwrap_or(rest.len());
        let token = &rest[..n];
        if token.is_empty() {
            return None;
        }
        let value = match token {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => match token.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => match token.parse::<f64>().ok().filter(|f| f.is_finite()) {
                    Some(f) => Value::from(f),
                    // Hugo's unquoted positional words: `{{< youtube dQw4w9WgXcQ >}}`.
                    None => Value::String(token.to_string()),
                },
            },
        };
        self.at += n;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_ok(source: &str) -> Scanned {
        scan(source, "blog", 1).unwrap_or_else(|e| panic!("{source:?}: {e}"))
    }

    fn token(n: usize) -> String {
        format!("{OPEN}{n}{CLOSE}")
    }

    #[test]
    fn reads_zola_calls_with_and_without_body() {
        let s = scan_ok("Intro\n\n{{ youtube(id=\"dQw\", autoplay=true, start=30) }}\n\n{% details(summary='More') %}\nHidden *text*.\n{% end %}\n");
        assert_eq!(s.calls.len(), 2);
        assert_eq!(s.calls[0].name, "youtube");
        assert_eq!(s.calls[0].args["id"], "dQw");
        assert_eq!(s.calls[0].args["autoplay"], true);
        assert_eq!(s.calls[0].args["start"], 30);
        assert_eq!(s.calls[0].line, 3);
        assert_eq!(s.calls[1].body.as_deref(), Some("\nHidden *text*.\n"));
        assert_eq!(s.calls[1].line, 5);
        assert_eq!(s.markdown, format!("Intro\n\n{}\n\n{}\n", token(0), token(1)));
    }

    #[test]
    fn reads_hugo_calls() {
        let s = scan_ok("{{< youtube dQw4w9WgXcQ >}}\n{{< figure src=\"/a.jpg\" alt=\"An \\\"A\\\"\" >}}\n{{% details summary=\"S\" %}}\nbody\n{{% /details %}}\n{{< gist spf13 7896402 />}}\n");
        assert_eq!(s.calls[0].positional, [Value::from("dQw4w9WgXcQ")]);
        assert_eq!(s.calls[1].args["alt"], "An \"A\"");
        assert_eq!(s.calls[1].body, None);
        assert_eq!(s.calls[2].body.as_deref(), Some("\nbody\n"));
        assert_eq!(s.calls[3].positional, [Value::from("spf13"), Value::from(7896402)]);
    }

    #[test]
    fn hugo_ref_becomes_an_internal_link() {
        let s = scan_ok("{{% note %}}see [it]({{< ref \"x.md\" >}}){{% /note %}}");
        assert_eq!(s.calls[0].body.as_deref(), Some("see [it](@/blog/x.md)"));
        let s = scan_ok(
            "[a]({{< ref \"post.md#x\" >}}) [b]({{< relref \"/docs/intro.md\" >}}) [c]({{< ref \"../about.md\" >}})",
        );
        assert_eq!(s.markdown, "[a](@/blog/post.md#x) [b](@/docs/intro.md) [c](@/about.md)");
        assert!(s.calls.is_empty());
    }

    #[test]
    fn code_and_prose_are_left_alone() {
        for source in [
            "`{{ youtube(id=\"x\") }}`",
            "```\n{{< youtube x >}}\n{% end %}\n```\n",
            "    {{ youtube(id=\"x\") }}\n",
            "Jinja prints {{ variable }} and {% if x %} blocks.",
            "A { brace and {{ }} and {%%}.",
        ] {
            let s = scan_ok(source);
            assert!(s.calls.is_empty(), "{source:?}");
            assert_eq!(s.markdown, source);
        }
    }

    #[test]
    fn escapes_show_the_call() {
        let s = scan_ok("{{/* youtube(id=\"x\") */}} and {{</* gist a b */>}}");
        assert_eq!(s.markdown, "{{ youtube(id=\"x\") }} and {{< gist a b >}}");
        assert!(s.calls.is_empty());
    }

    #[test]
    fn forged_placeholders_are_removed() {
        let s = scan_ok(&format!("text {OPEN}0{CLOSE} more"));
        assert_eq!(s.markdown, "text 0 more");
    }

    #[test]
    fn malformed_calls_are_errors_with_the_line() {
        for (source, line) in [
            ("a\n\n{{ youtube(id=) }}", 3),
            ("{{ youtube(id=\"x\" }}", 1),
            ("x\n{% details() %}\nnever closed", 2),
            ("{% end %}", 1),
            ("{{< youtube x", 1),
            ("{{< /details >}}", 1),
            ("{% a() %}\n{{ b() }}\n{% end %}", 2),
            ("{{< x a=1 \"b\" >}}", 1),
            ("{{< ref >}}", 1),
            ("{{ yt(a=[1, 2) }}", 1),
        ] {
            let err = scan(source, "", 1).expect_err(source);
            assert_eq!(err.line, line, "{source:?}: {err}");
        }
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let many = "{{ a() }}".repeat(MAX_CALLS + 1);
        assert!(scan(&many, "", 1).is_err());
        for source in [
            "{{".repeat(10_000),
            "{{< ".repeat(5_000),
            "{% x() %}".repeat(2_000),
            format!("{{{{ x(a=\"{}", "\\".repeat(10_000)),
            "{{ é(a=1) }} {{< \u{0} >}} {{% %}}".to_string(),
            "{{ x(a=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]) }}".to_string(),
        ] {
            let _ = scan(&source, "", 1);
        }
    }
}
