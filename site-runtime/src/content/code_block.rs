//! Fenced code blocks: the info string in Zola's form (```` ```rust,linenos,hl_lines=1 3-4 ````)
//! and Hugo's (```` ```go {linenos=true, hl_lines=[2, "4-5"], linenostart=10} ````), and the
//! HTML the index stores for a block: `<pre data-lang=… data-linenos=… data-hl=…><code …>`,
//! highlighted when a page is rendered ([`crate::render::highlight`]), so the theme and its
//! highlighting can change without re-indexing.

use pulldown_cmark_escape::{escape_html, escape_html_body_text};

/// Lines a block may mark (`hl_lines`) or number from: beyond this, a typo.
const MAX_LINE: usize = 1_000_000;

/// A fenced block's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeInfo {
    /// The language as written (`rust`, `sh`, `toml`), if any.
    pub lang: Option<String>,
    /// Show line numbers starting here (`linenos`, `linenostart`).
    pub line_numbers: Option<usize>,
    /// Highlighted lines, inclusive ranges counted from the block's first line (1).
    pub highlight: Vec<(usize, usize)>,
    /// Lines not shown (`hide_lines`, Zola).
    pub hide: Vec<(usize, usize)>,
}

impl CodeInfo {
    /// Parse an info string; an option we do not know or cannot read is an error naming it.
    pub fn parse(info: &str) -> Result<CodeInfo, String> {
        let info = info.trim();
        let (head, hugo) = match info.find('{') {
            Some(i) => {
                let inner = info[i + 1..].strip_suffix('}').ok_or("the options of a code block must end with }")?;
                (info[..i].trim(), Some(inner))
            }
            None => (info, None),
        };
        let mut out = CodeInfo::default();
        let mut linenos = false;
        let mut start = 1;
        let mut items: Vec<(String, String)> = Vec::new();
        for (i, part) in head.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            match part.split_once('=') {
                Some((k, v)) => items.push((k.trim().to_string(), v.trim().to_string())),
                None if i == 0 && part != "linenos" => out.lang = Some(part.to_string()),
                None => items.push((part.to_string(), "true".into())),
            }
        }
        if let Some(inner) = hugo {
            items.extend(split_hugo_options(inner)?);
        }
        for (key, value) in items {
            match key.as_str() {
                "linenos" => {
                    linenos = match value.trim_matches('"') {
                        "true" | "table" | "inline" => true,
                        "false" => false,
                        other => return Err(format!("linenos must be true, false, table or inline, not {other:?}")),
                    }
                }
                "linenostart" => {
                    start = value
                        .trim_matches('"')
                        .parse()
                        .ok()
                        .filter(|n| *n <= MAX_LINE)
                        .ok_or_else(|| format!("linenostart must be a line number, not {value:?}"))?;
                }
                "hl_lines" => out.highlight = line_ranges(&value)?,
                "hide_lines" => out.hide = line_ranges(&value)?,
                // Hugo options that only change how the HTML is laid out: accepted, no effect.
                "anchorlinenos" | "lineanchors" | "style" | "noclasses" | "lineNos" | "guessSyntax" | "tabWidth"
                | "codeFences" | "hl_inline" | "name" => {}
                other => return Err(format!("unknown code block option {other:?}")),
            }
        }
        if linenos {
            out.line_numbers = Some(start);
        }
        if let Some(lang) = &out.lang {
            if lang.len() > 64 || !lang.chars().all(|c| c.is_ascii_alphanumeric() || "+-#._".contains(c)) {
                return Err(format!("{lang:?} is not a language name"));
            }
        }
        Ok(out)
    }

    /// The HTML the index stores for a block with `code`.
    pub fn to_html(&self, code: &str) -> String {
        let mut out = String::with_capacity(code.len() + 96);
        out.push_str("<pre");
        if let Some(lang) = &self.lang {
            out.push_str(" data-lang=\"");
            let _ = escape_html(&mut out, lang);
            out.push('"');
        }
        if let Some(start) = self.line_numbers {
            out.push_str(&format!(" data-linenos=\"{start}\""));
        }
        for (attr, ranges) in [("data-hl", &self.highlight), ("data-hide", &self.hide)] {
            if !ranges.is_empty() {
                let list: Vec<String> =
                    ranges.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
                out.push_str(&format!(" {attr}=\"{}\"", list.join(",")));
            }
        }
        out.push_str("><code");
        if let Some(lang) = &self.lang {
            out.push_str(" class=\"language-");
            let _ = escape_html(&mut out, lang);
            out.push('"');
        }
        out.push('>');
        let _ = escape_html_body_text(&mut out, code);
        out.push_str("</code></pre>\n");
        out
    }
}

/// `linenos=true, hl_lines=[2, "4-5"], linenostart=10` → key/value pairs (lists kept whole).
fn split_hugo_options(inner: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            ',' | ' ' if !quoted && depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("code block option {part:?} has no value"))?;
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// `1 3-4`, `[2, "4-5"]`, `"1-2 5"` → inclusive ranges.
fn line_ranges(value: &str) -> Result<Vec<(usize, usize)>, String> {
    let cleaned = value.trim().trim_start_matches('[').trim_end_matches(']');
    let mut out = Vec::new();
    for item in cleaned.split([',', ' ']).map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()) {
        let bad = || format!("line range {item:?} must be a line number or first-last");
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => {
                (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?)
            }
            None => {
                let n = item.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if a == 0 || b < a || b > MAX_LINE {
            return Err(bad());
        }
        out.push((a, b));
        if out.len() > 256 {
            return Err("too many line ranges".into());
        }
    }
    Ok(out)
}

/// Parse the ranges stored in `data-hl` / `data-hide`.
pub fn stored_ranges(value: &str) -> Vec<(usize, usize)> {
    line_ranges(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zola_options() {
        let c = CodeInfo::parse("rust,linenos,linenostart=20,hl_lines=1 3-4,hide_lines=9").unwrap();
        assert_eq!(c.lang.as_deref(), Some("rust"));
        assert_eq!(c.line_numbers, Some(20));
        assert_eq!(c.highlight, [(1, 1), (3, 4)]);
        assert_eq!(c.hide, [(9, 9)]);
        assert_eq!(CodeInfo::parse("").unwrap(), CodeInfo::default());
        assert_eq!(CodeInfo::parse("c++").unwrap().lang.as_deref(), Some("c++"));
    }

    #[test]
    fn reads_hugo_options() {
        let c = CodeInfo::parse("go {linenos=true, hl_lines=[2, \"4-5\"], linenostart=199}").unwrap();
        assert_eq!(c.lang.as_deref(), Some("go"));
        assert_eq!(c.line_numbers, Some(199));
        assert_eq!(c.highlight, [(2, 2), (4, 5)]);
        let c = CodeInfo::parse("html {linenos=table,hl_lines=\"1-2 4\"}").unwrap();
        assert_eq!(c.highlight, [(1, 2), (4, 4)]);
    }

    #[test]
    fn stores_options_as_data_attributes() {
        let c = CodeInfo::parse("rust,linenos,hl_lines=2").unwrap();
        assert_eq!(
            c.to_html("fn main() { a < b }\n"),
            "<pre data-lang=\"rust\" data-linenos=\"1\" data-hl=\"2\"><code class=\"language-rust\">fn main() { a &lt; b }\n</code></pre>\n"
        );
        assert_eq!(stored_ranges("1-2,5"), [(1, 2), (5, 5)]);
    }

    #[test]
    fn bad_options_are_refused_with_their_name() {
        for (info, needle) in [
            ("rust,hl_lines=0", "line range"),
            ("rust,hl_lines=5-2", "line range"),
            ("rust,hl_lines=x", "line range"),
            ("rust,linenostart=-1", "linenostart"),
            ("rust,colour=red", "colour"),
            ("go {linenos=maybe}", "linenos"),
            ("go {linenos=true", "end with }"),
            ("go {hl_lines}", "no value"),
            ("<script>", "language"),
        ] {
            let err = CodeInfo::parse(info).expect_err(info);
            assert!(err.contains(needle), "{info}: {err}");
        }
    }
}
