//! Template filters beyond minijinja's built-ins: the ones Zola and Hugo users expect.

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};

/// Register `date`, `truncate`, `slugify`, `markdown`, `json` and `wordcount`.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("date", date);
    env.add_filter("truncate", truncate);
    env.add_filter("slugify", |s: String| slug::slugify(s));
    env.add_filter("markdown", |s: String| Value::from_safe_string(crate::content::markdown::to_html(&s)));
    env.add_filter("json", |v: Value| -> Result<Value, Error> {
        serde_json::to_string(&v)
            .map(Value::from_safe_string)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_filter("wordcount", |s: String| s.split_whitespace().count());
}

/// `{{ page.date | date('%Y-%m-%d') }}`: seconds since the epoch (or an RFC 3339 string)
/// formatted with strftime directives, in UTC.
fn date(value: Value, format: Option<String>) -> Result<String, Error> {
    let ts = if let Some(secs) = value.as_i64() {
        jiff::Timestamp::from_second(secs).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?
    } else if let Some(text) = value.as_str() {
        text.parse::<jiff::Timestamp>().map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?
    } else {
        return Ok(String::new());
    };
    let format = format.unwrap_or_else(|| "%Y-%m-%d".into());
    let zoned = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(format.as_str(), &zoned)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// `{{ text | truncate(120) }}`: at most `length` characters, cut at a word when possible.
fn truncate(text: String, length: Option<usize>, end: Option<String>) -> String {
    let length = length.unwrap_or(255);
    if text.chars().count() <= length {
        return text;
    }
    let end = end.unwrap_or_else(|| "…".into());
    let cut: String = text.chars().take(length).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > length / 2 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{}{end}", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(date(Value::from(0), None).unwrap(), "1970-01-01");
        assert_eq!(date(Value::from(1714521600), Some("%B %-d, %Y".into())).unwrap(), "May 1, 2024");
        assert_eq!(date(Value::from("2024-05-01T00:00:00Z"), Some("%d/%m".into())).unwrap(), "01/05");
        assert_eq!(date(Value::from(()), None).unwrap(), "");
    }

    #[test]
    fn truncates_at_words() {
        assert_eq!(truncate("short".into(), Some(10), None), "short");
        assert_eq!(truncate("the quick brown fox jumps".into(), Some(12), None), "the quick…");
        assert_eq!(truncate("ééééééé".into(), Some(3), Some("...".into())), "ééé...");
    }
}
