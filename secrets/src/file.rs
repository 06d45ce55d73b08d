//! Secrets documents on disk, in a checkout of the site: read, write (atomically), and the
//! one-value change that the CLI's `set` and the desktop app share.

use std::path::Path;

use crate::document::{set_value, Document, Format};
use crate::identity::Keyring;
use crate::recipients::{self, Person};
use crate::{Error, Result};

/// The document at `path`; `None` when there is no file.
pub fn read(path: &Path) -> Result<Option<Document>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path: path.into(), source }),
    };
    Document::parse(format_of(path)?, &text).map(Some)
}

/// The format of a secrets file, by its extension.
pub fn format_of(path: &Path) -> Result<Format> {
    Format::of_path(&path.to_string_lossy())
        .ok_or_else(|| Error::invalid("a secrets file ends in .yaml, .yml, .json or .toml"))
}

/// Write `doc` to `path` through a temporary file and a rename (parents made).
pub fn write(path: &Path, doc: &Document) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, doc.text()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Who the document at `path` is encrypted to ([`recipients::choose`]); `dir` is the
/// checkout's `secrets/`, whose other files give a new document the server's recipient. An
/// error when nobody is left.
pub fn recipients_for(
    old: Option<&Document>,
    dir: &Path,
    asked: &[String],
    keyring: &'static Keyring,
    people: &[Person<'_>],
) -> Result<Vec<String>> {
    let neighbours: Vec<Vec<String>> = match old {
        Some(_) => Vec::new(),
        None => recipients::files_in(dir)
            .iter()
            .filter_map(|f| read(f).ok().flatten())
            .map(|d| d.recipients().to_vec())
            .collect(),
    };
    let out = recipients::choose(old.map(Document::recipients), &neighbours, asked, &keyring.recipients(), people);
    match out.is_empty() {
        true => Err(Error::Key("nobody left to encrypt to: give the server's recipient".into())),
        false => Ok(out),
    }
}

/// Encrypt plain `text` into `path`: an update of `old` (unchanged values keep their
/// ciphertext while the recipients stay) or a new document.
pub fn save(
    path: &Path,
    old: Option<&Document>,
    text: &str,
    recipients: &[String],
    keyring: &'static Keyring,
) -> Result<()> {
    let doc = match old {
        Some(old) => old.update(keyring, text, recipients)?,
        None => Document::encrypt(format_of(path)?, text, recipients)?,
    };
    write(path, &doc)
}

/// Set `key` (dot-separated) of the document at `path` (made when missing) to `value`;
/// returns the recipients it was encrypted to.
pub fn set(
    path: &Path,
    key: &str,
    value: &str,
    dir: &Path,
    asked: &[String],
    keyring: &'static Keyring,
    people: &[Person<'_>],
) -> Result<Vec<String>> {
    let old = read(path)?;
    let plain = match &old {
        Some(doc) => doc.plaintext(keyring)?,
        None => zeroize::Zeroizing::new(String::new()),
    };
    let text = set_value(format_of(path)?, &plain, key, value)?;
    let recipients = recipients_for(old.as_ref(), dir, asked, keyring, people)?;
    save(path, old.as_ref(), &text, &recipients, keyring)?;
    Ok(recipients)
}
