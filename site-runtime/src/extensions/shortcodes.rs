//! Shortcodes in rendered Markdown: `{{ name(key="value", n=3) }}` in a page's text calls the
//! plugin that declares `name`. They are found in the HTML Markdown produced (where `"` reads
//! `&quot;`), never inside `<code>` or `<pre>`; a paragraph holding only a shortcode is replaced
//! whole, so a shortcode can produce block HTML. Unknown names are left as they are.
//!
//! Written by hand: this is a small grammar over our own renderer's output, not HTML at large.

use serde_json::{Map, Value};

/// Replace every shortcode in `html` by `call(name, args)` (`None`: leave it).
pub fn expand(html: &str, mut call: impl FnMut(&str, &Map<String, Value>) -> Option<String>) -> String {
    if !html.contains("{{") {
        return html.to_string();
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("{{") {
        // Skip code: copy through the end of a <code> or <pre> element that opens before.
        if let Some(code) = find_code_open(&rest[..start]) {
            let close = if rest[code..].starts_with("<pre") { "</pre>" } else { "</code>" };
            let end = rest[code..].find(close).map_or(rest.len(), |e| code + e + close.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let Some((name, args, len)) = parse(&rest[start..]) else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        };
        let Some(replacement) = call(name, &args) else {
            out.push_str(&rest[..start + len]);
            rest = &rest[start + len..];
            continue;
        };
        // `<p>{{ x() }}</p>` is replaced whole.
        let before = &rest[..start];
        let after = &rest[start + len..];
        if before.ends_with("<p>") && after.starts_with("</p>") {
            out.push_str(&before[..before.len() - 3]);
            out.push_str(&replacement);
            rest = &after[4..];
        } else {
            out.push_str(before);
            out.push_str(&replacement);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The offset of the first `<code` or `<pre` tag in `text`.
fn find_code_open(text: &str) -> Option<usize> {
    [text.find("<code"), text.find("<pre")].into_iter().flatten().min()
}

/// Parse `{{ name(args) }}` at the start of `text`: (name, args, length matched).
fn parse(text: &str) -> Option<(&str, Map<String, Value>, usize)> {
    let mut p = Cursor { text, at: 2 };
    p.spaces();
    let name = p.identifier()?;
    p.eat("(")?;
    let mut args = Map::new();
    p.spaces();
    if p.eat(")").is_none() {
        loop {
            p.spaces();
            let key = p.identifier()?;
            p.spaces();
            p.eat("=")?;
            p.spaces();
            let value = p.value()?;
            args.insert(key.to_string(), value);
            p.spaces();
            if p.eat(",").is_some() {
                continue;
            }
            p.eat(")")?;
            break;
        }
    }
    p.spaces();
    p.eat("}}")?;
    Some((name, args, p.at))
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
        let n = self.rest().len() - self.rest().trim_start_matches([' ', '\t']).len();
        self.at += n;
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

    fn value(&mut self) -> Option<Value> {
        for quote in ["&quot;", "'", "&#39;", "\""] {
            if self.eat(quote).is_some() {
                let end = self.rest().find(quote)?;
                let raw = &self.rest()[..end];
                self.at += end + quote.len();
                return Some(Value::String(unescape(raw)));
            }
        }
        let rest = self.rest();
        let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).unwrap_or(rest.len());
        let token = &rest[..n];
        let value = match token {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => {
                if let Ok(i) = token.parse::<i64>() {
                    Value::from(i)
                } else {
                    Value::from(token.parse::<f64>().ok().filter(|f| f.is_finite())?)
                }
            }
        };
        self.at += n;
        Some(value)
    }
}

/// Undo the escaping of Markdown's HTML output in a quoted argument.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(html: &str) -> String {
        expand(html, |name, args| (name == "yt").then(|| format!("[yt {}]", serde_json::to_string(args).unwrap())))
    }

    #[test]
    fn expands_known_shortcodes() {
        assert_eq!(run("<p>{{ yt(id=&quot;a&amp;b&quot;, start=30) }}</p>\n"), "[yt {\"id\":\"a&b\",\"start\":30}]\n");
        assert_eq!(run("<p>see {{yt()}} here</p>"), "<p>see [yt {}] here</p>");
        assert_eq!(
            run("<p>{{ yt(on=true, x=1.5) }} and {{ yt(s='q') }}</p>"),
            "<p>[yt {\"on\":true,\"x\":1.5}] and [yt {\"s\":\"q\"}]</p>"
        );
    }

    #[test]
    fn leaves_everything_else_alone() {
        for html in [
            "<p>{{ other(a=1) }}</p>",
            "<pre><code>{{ yt(id=&quot;x&quot;) }}</code></pre>",
            "<p><code>{{ yt() }}</code></p>",
            "<p>{{ yt(id=&quot;unterminated) }}</p>",
            "<p>{{ yt(id=) }}</p>",
            "<p>{{ 9yt() }}</p>",
            "<p>{{ yt(a=1 }}</p>",
            "{{",
            "}} {{ {{ (",
            "<p>{{ yt(x=nan) }}</p>",
        ] {
            assert_eq!(run(html), html);
        }
        assert_eq!(run("<code>{{ yt() }}</code><p>{{ yt() }}</p>"), "<code>{{ yt() }}</code>[yt {}]");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let long = format!("<p>{}</p>", "{{ yt(a=&quot;".repeat(10_000));
        let _ = run(&long);
        let _ = run("{{ yt(é=1) }} {{ \u{0} }} {{ yt(a=&quot;\u{10ffff}&quot;) }}");
    }
}
