//! Parsing the command a client asks the SSH endpoint to run.
//!
//! `git` runs `git-upload-pack '<path>'` or `git-receive-pack '<path>'` over SSH, the path in
//! shell single quotes. We never run a shell: the line is parsed here, the path reduced to a
//! repository name, and everything else is refused with a one-line message.

use crate::hook::Service;

/// A parsed `exec` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommand {
    /// Which service.
    pub service: Service,
    /// The repository name (`site` for `/site.git`, `site.git`, `'~/site'`).
    pub repository: String,
}

/// Why a command line was refused; the text is shown to the user on stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not a Git service (a shell, `ls`, `scp`, …).
    #[error("this server only speaks Git (git-upload-pack, git-receive-pack); '{0}' is not available")]
    NotGit(String),
    /// A Git service with a path we cannot read.
    #[error("invalid repository path {0:?}")]
    BadPath(String),
}

/// Parse an exec command line.
pub fn parse(line: &str) -> Result<GitCommand, CommandError> {
    let line = line.trim();
    let (program, rest) = match line.split_once(' ') {
        Some((p, r)) => (p, r.trim_start()),
        None => (line, ""),
    };
    // `git upload-pack` (with a space) is also accepted, as git-shell does.
    let (program, rest) = if program == "git" {
        match rest.split_once(' ') {
            Some((sub, r)) => (format!("git-{sub}"), r.trim_start()),
            None => (format!("git-{rest}"), ""),
        }
    } else {
        (program.to_string(), rest)
    };
    let service = match program.as_str() {
        "git-upload-pack" => Service::UploadPack,
        "git-receive-pack" => Service::ReceivePack,
        "whispercms-watch-refs" => Service::WatchRefs,
        _ => return Err(CommandError::NotGit(first_word(line).to_string())),
    };
    let path = unquote(rest).ok_or_else(|| CommandError::BadPath(rest.to_string()))?;
    let repository = repository_name(&path).ok_or_else(|| CommandError::BadPath(path.clone()))?;
    Ok(GitCommand { service, repository })
}

fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

/// Undo shell single-quoting as git produces it: `'a'\''b'` is `a'b`. An unquoted single word
/// is taken as-is. Anything else (double quotes, `$`, backticks, several words) is refused.
fn unquote(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    if !s.starts_with('\'') {
        let plain = s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-~".contains(c));
        return plain.then(|| s.to_string());
    }
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    loop {
        // Inside quotes until the closing quote.
        if chars.next() != Some('\'') {
            return None;
        }
        loop {
            match chars.next()? {
                '\'' => break,
                c => out.push(c),
            }
        }
        match chars.peek() {
            None => return Some(out),
            Some('\\') => {
                chars.next();
                if chars.next() != Some('\'') {
                    return None;
                }
                out.push('\'');
                if chars.peek().is_none() {
                    return Some(out);
                }
            }
            Some(_) => return None,
        }
    }
}

/// Reduce a path to a repository name: strip a leading `/` or `~/`, a trailing `/` and `.git`.
/// Only plain names (letters, digits, `.`, `_`, `-`, not starting with a dot) are valid.
pub fn repository_name(path: &str) -> Option<String> {
    let p = path.strip_prefix("~/").unwrap_or(path);
    let p = p.trim_start_matches('/').trim_end_matches('/');
    let p = p.strip_suffix(".git").unwrap_or(p);
    let valid = !p.is_empty()
        && !p.starts_with('.')
        && p.len() <= 100
        && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    valid.then(|| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> GitCommand {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn accepts_the_forms_git_sends() {
        for line in [
            "git-upload-pack '/site.git'",
            "git-upload-pack 'site.git'",
            "git-upload-pack '/site'",
            "git-upload-pack site",
            "git-upload-pack /site.git/",
            "git upload-pack '~/site.git'",
        ] {
            assert_eq!(ok(line), GitCommand { service: Service::UploadPack, repository: "site".into() }, "{line}");
        }
        assert_eq!(ok("git-receive-pack 'site.git'").service, Service::ReceivePack);
    }

    #[test]
    fn refuses_everything_else() {
        for line in ["", "bash", "ls -la", "scp -t /etc", "git-upload-archive 'site'", "rm -rf /"] {
            assert!(matches!(parse(line), Err(CommandError::NotGit(_))), "{line}");
        }
    }

    #[test]
    fn refuses_hostile_paths() {
        for line in [
            "git-upload-pack '../etc/passwd'",
            "git-upload-pack '/a/b.git'",
            "git-upload-pack 'site'; rm -rf /",
            "git-upload-pack \"site\"",
            "git-upload-pack '$(reboot)'",
            "git-upload-pack 'unterminated",
            "git-upload-pack '.hidden'",
            "git-upload-pack",
            "git-upload-pack ''",
            "git-receive-pack 'si'\\''te'",
        ] {
            assert!(matches!(parse(line), Err(CommandError::BadPath(_))), "{line}");
        }
    }

    #[test]
    fn unquotes_like_sh() {
        assert_eq!(unquote("'a'\\''b'").as_deref(), Some("a'b"));
        assert_eq!(unquote("'abc'").as_deref(), Some("abc"));
        assert_eq!(unquote("'a' 'b'"), None);
    }
}
