//! `whispercms-server backup FILE` and `restore FILE`: one archive (tar) holding what cannot be
//! derived — a git bundle of every ref (`site.bundle`), the settings file, and the keys (SSH host
//! key, preview secret, secrets identity and the rest of `<data_dir>/keys`). Indexes are caches
//! of Git and are left out: the restored server rebuilds them.
//!
//! A backup is taken while the server serves and takes pushes: the refs are read at one instant
//! and the objects they reach are written under a reader guard (maintenance keeps the packs).
//! A restore never overwrites: it refuses a data directory with a repository, or a settings file
//! that exists.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::settings::Settings;

/// The archive's first entry: what it is.
const MANIFEST: &str = "whispercms-backup.toml";
const BUNDLE: &str = "site.bundle";
const SETTINGS: &str = "settings.toml";
/// Largest settings file or key accepted from an archive.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// Write the archive of the installation at `settings` (read from `config`, if it exists).
pub fn backup(file: &Path, settings: &Settings, config: Option<&Path>) -> anyhow::Result<()> {
    let git_dir = settings.data_dir.join("repos/site.git");
    if !git_dir.join("objects").is_dir() {
        bail!("{}: no site repository to back up", git_dir.display());
    }
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // The archive holds private keys: 0600 from the first byte, renamed into place when whole.
    let tmp = tempfile::Builder::new()
        .prefix(".whispercms-backup-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let bundle = tempfile::Builder::new().prefix(".whispercms-bundle-").tempfile_in(dir)?;
    let repo = githost::Repository::open_or_init("site", &git_dir)?;
    let refs = githost::bundle::write(&repo, bundle.as_file())?;
    let mut archive = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
    let manifest = format!(
        "# A WhisperCMS backup: restore with `whispercms-server restore FILE --data-dir DIR`.\n\
         format = 1\nserver = \"{}\"\ncreated = \"{}\"\nrefs = {}\n",
        env!("CARGO_PKG_VERSION"),
        jiff::Timestamp::now(),
        refs.len()
    );
    append_bytes(&mut archive, MANIFEST, manifest.as_bytes())?;
    archive.append_path_with_name(bundle.path(), BUNDLE).context("adding the bundle")?;
    if let Some(config) = config.filter(|c| c.is_file()) {
        archive.append_path_with_name(config, SETTINGS).with_context(|| format!("adding {}", config.display()))?;
    }
    for (name, path) in key_files(settings)? {
        archive
            .append_path_with_name(&path, format!("keys/{name}"))
            .with_context(|| format!("adding {}", path.display()))?;
    }
    let out = archive.into_inner().context("finishing the archive")?;
    let out = out.into_inner().map_err(|e| e.into_error()).context("writing the archive")?;
    out.sync_all()?;
    tmp.persist(file).map_err(|e| e.error).with_context(|| format!("writing {}", file.display()))?;
    println!("backed up {} refs, the settings and the keys to {}", refs.len(), file.display());
    Ok(())
}

/// The key files: everything in `<data_dir>/keys`, and the host key and secrets identity where
/// the settings put them (by file name).
fn key_files(settings: &Settings) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let keys = settings.data_dir.join("keys");
    if keys.is_dir() {
        for entry in std::fs::read_dir(&keys)? {
            let path = entry?.path();
            if path.is_file() {
                if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    files.push((name.to_string(), path.clone()));
                }
            }
        }
    }
    let host_pub = settings.host_key_path().with_extension("pub");
    for path in [settings.host_key_path(), host_pub, settings.secrets_identity_path()] {
        if path.is_file() && !path.starts_with(&keys) {
            let name = path.file_name().and_then(|n| n.to_str()).context("a key file name")?.to_string();
            files.retain(|(n, _)| *n != name);
            files.push((name, path));
        }
    }
    files.sort();
    Ok(files)
}

fn append_bytes(archive: &mut tar::Builder<impl Write>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(jiff::Timestamp::now().as_second().max(0) as u64);
    header.set_cksum();
    archive.append_data(&mut header, name, bytes).with_context(|| format!("adding {name}"))
}

/// Restore the archive `file` into the empty data directory `data_dir`, and its settings (if it
/// has them) to `config` with `data_dir` set to the new place and key paths to its `keys/`.
pub fn restore(file: &Path, data_dir: &Path, config: &Path) -> anyhow::Result<()> {
    let git_dir = data_dir.join("repos/site.git");
    if git_dir.exists() {
        bail!("{} exists: restore goes into an empty data directory; nothing was changed", git_dir.display());
    }
    let keys_dir = data_dir.join("keys");
    let mut archive =
        tar::Archive::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let mut manifest = None;
    let mut settings = None;
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    let mut bundle = None;
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        if !entry.header().entry_type().is_file() {
            bail!("{}: holds something other than files; not a WhisperCMS backup", file.display());
        }
        let name = entry.path().context("an entry's name")?.to_string_lossy().into_owned();
        match name.as_str() {
            MANIFEST => manifest = Some(small(&mut entry, &name)?),
            SETTINGS => settings = Some(String::from_utf8(small(&mut entry, &name)?).context("settings.toml")?),
            BUNDLE => {
                // Spooled next to the data directory: entries are read in order, once.
                std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
                let mut spool = tempfile::Builder::new().prefix(".whispercms-restore-").tempfile_in(data_dir)?;
                std::io::copy(&mut entry, &mut spool).context("reading site.bundle")?;
                bundle = Some(spool);
            }
            _ => match name.strip_prefix("keys/") {
                Some(key) if is_plain_name(key) => keys.push((key.to_string(), small(&mut entry, &name)?)),
                _ => bail!("{}: unexpected entry {name:?}; not a WhisperCMS backup", file.display()),
            },
        }
    }
    let manifest = manifest.with_context(|| format!("{}: no {MANIFEST}; not a WhisperCMS backup", file.display()))?;
    let manifest = String::from_utf8_lossy(&manifest);
    if !manifest.lines().any(|l| l.trim() == "format = 1") {
        bail!("{}: a backup format this server does not know:\n{manifest}", file.display());
    }
    let bundle = bundle.with_context(|| format!("{}: no {BUNDLE}", file.display()))?;
    let settings_text = match &settings {
        Some(text) => Some(relocate_settings(text, data_dir)?),
        None => None,
    };
    if settings_text.is_some() && config.exists() {
        bail!("{} exists: restore never overwrites settings; give --config NEW_PATH", config.display());
    }
    for (name, _) in &keys {
        let path = keys_dir.join(name);
        if path.exists() {
            bail!("{} exists: restore goes into an empty data directory; nothing was changed", path.display());
        }
    }

    let repo = githost::Repository::open_or_init("site", &git_dir)?;
    let refs = githost::bundle::read(&repo, std::fs::File::open(bundle.path())?, &githost::Limits::default())
        .context("restoring the repository from site.bundle")?;
    std::fs::create_dir_all(&keys_dir)?;
    for (name, bytes) in &keys {
        crate::init::write_new(&keys_dir.join(name), bytes, 0o600)?;
    }
    if let Some(text) = settings_text {
        if let Some(dir) = config.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::init::write_new(config, text.as_bytes(), 0o640)?;
    }
    println!(
        "restored {} refs and {} key files into {}{}",
        refs.len(),
        keys.len(),
        data_dir.display(),
        if settings.is_some() { format!("; the settings into {}", config.display()) } else { String::new() }
    );
    Ok(())
}

/// The archive's settings with `data_dir` set to `data_dir` and explicit key paths removed (the
/// keys are restored into `<data_dir>/keys`, where the defaults look); comments kept.
fn relocate_settings(text: &str, data_dir: &Path) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("the archive's settings.toml")?;
    let abs = std::path::absolute(data_dir)?;
    let abs = abs.to_str().context("the data directory's path is not UTF-8")?;
    match doc.contains_key("data_dir") {
        true => crate::init::set_keeping_comments(doc.as_item_mut(), &["data_dir"], abs)?,
        false => doc["data_dir"] = toml_edit::value(abs),
    }
    for (table, key) in [("ssh", "host_key"), ("secrets", "identity")] {
        if let Some(t) = doc.get_mut(table).and_then(|t| t.as_table_like_mut()) {
            t.remove(key);
        }
    }
    let text = doc.to_string();
    Settings::parse(&text).context("the archive's settings.toml, relocated")?;
    Ok(text)
}

fn small(entry: &mut impl Read, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry.take(MAX_SMALL_FILE + 1).read_to_end(&mut bytes).with_context(|| format!("reading {name}"))?;
    if bytes.len() as u64 > MAX_SMALL_FILE {
        bail!("{name}: larger than {MAX_SMALL_FILE} bytes; not a WhisperCMS backup");
    }
    Ok(bytes)
}

/// A file name with no directory part and nothing hidden in it.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_move_with_the_data_and_keep_their_comments() {
        let text = "data_dir = \"/old\"   # where\n[ssh]\nhost_key = \"/etc/k\"\nlisten = \"0.0.0.0:22\"\n";
        let out = relocate_settings(text, Path::new("/new/place")).unwrap();
        let s = Settings::parse(&out).unwrap();
        assert_eq!(s.data_dir, Path::new("/new/place"));
        assert_eq!(s.ssh.host_key, None);
        assert_eq!(s.ssh.listen.to_string(), "0.0.0.0:22");
        assert!(out.contains("# where"), "{out}");
        assert!(relocate_settings("data_dir = [", Path::new("/x")).is_err());
    }

    #[test]
    fn only_plain_key_names_are_taken() {
        for bad in ["", "../x", "a/b", ".hidden", "é", "a b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        assert!(is_plain_name("ssh_host_ed25519.pub"));
    }
}
