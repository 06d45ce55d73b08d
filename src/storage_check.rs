//! Watching what the server keeps on disk while it runs. The data directory must be there and
//! writable, the repository in it: a volume remounted read-only after a disk error, one
//! unmounted, a directory removed by hand are each reported on `/readyz` (and logged once) while the last good snapshot keeps
//! serving; the report clears by itself when the directory is back. The repository's files are
//! checked ([`githost::integrity`]) at start and again whenever the directory comes back, since
//! what comes back may be a restore.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use site_runtime::Site;

/// How often the data directory is looked at: a `stat` of it and of the repository's `HEAD`,
/// and the probe file opened for writing.
const PERIOD: Duration = Duration::from_secs(1);

/// The empty file opened for writing to learn whether the directory takes writes: made once and
/// kept, so the check writes nothing (writing and removing a file each second changed the
/// directory every second).
const PROBE: &str = ".whispercms-write-check";

/// The checks' names on a site ([`Site::set_fault`]).
const DATA_DIR: &str = "data directory";
const REPOSITORY: &str = "repository";

/// Check the repository now and the data directory every [`PERIOD`] from now on, on a thread of
/// its own, reporting what is wrong on `sites`.
pub fn spawn(data_dir: PathBuf, git_dir: PathBuf, sites: Vec<Arc<Site>>) -> std::io::Result<()> {
    std::thread::Builder::new().name("storage-check".into()).spawn(move || {
        check_repository(&git_dir, &sites);
        let mut last: Option<String> = None;
        loop {
            let fault = data_dir_fault(&data_dir).or_else(|| repository_gone(&git_dir));
            if fault != last {
                match &fault {
                    Some(f) => tracing::error!(fault = %f, "storage fault; serving the last good snapshot"),
                    None => {
                        tracing::info!(data_dir = %data_dir.display(), "data directory writable again");
                        check_repository(&git_dir, &sites);
                    }
                }
                for site in &sites {
                    site.set_fault(DATA_DIR, fault.clone());
                }
                last = fault;
            }
            std::thread::sleep(PERIOD);
        }
    })?;
    Ok(())
}

/// Check the repository's files (milliseconds) and report what is damaged.
fn check_repository(git_dir: &Path, sites: &[Arc<Site>]) {
    let problems = githost::integrity::check(git_dir);
    let fault = (!problems.is_empty()).then(|| format!("repository damaged: {}", problems.join("; ")));
    if let Some(f) = &fault {
        tracing::error!(fault = %f, "repository damaged; serving the last good snapshot");
    }
    for site in sites {
        site.set_fault(REPOSITORY, fault.clone());
    }
}

/// Whether the repository has gone from the data directory (a volume unmounted under it).
fn repository_gone(git_dir: &Path) -> Option<String> {
    (!git_dir.join("HEAD").is_file()).then(|| format!("repository {} is gone", git_dir.display()))
}

/// What is wrong with the data directory `dir`, if anything: gone, not a directory, or not
/// taking writes (read-only, permissions).
fn data_dir_fault(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!("data directory {} is gone", dir.display()))
        }
        Err(e) => return Some(format!("data directory {} cannot be read: {e}", dir.display())),
        Ok(m) if !m.is_dir() => return Some(format!("data directory {} is not a directory", dir.display())),
        Ok(_) => {}
    }
    // Opening a file for writing fails on a read-only mount (and without permission) as
    // writing would; it is created only when missing.
    let probe = dir.join(PROBE);
    match std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&probe) {
        Ok(_) => None,
        Err(e) => Some(format!("data directory {} cannot be written: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_data_directory_that_is_gone_or_not_one() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(data_dir_fault(tmp.path()), None);
        assert_eq!(std::fs::metadata(tmp.path().join(PROBE)).unwrap().len(), 0, "the probe stays empty");
        let changed = std::fs::metadata(tmp.path()).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(data_dir_fault(tmp.path()), None);
        assert_eq!(std::fs::metadata(tmp.path()).unwrap().modified().unwrap(), changed, "nothing written");
        let gone = tmp.path().join("gone");
        assert_eq!(data_dir_fault(&gone), Some(format!("data directory {} is gone", gone.display())));
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(data_dir_fault(&file), Some(format!("data directory {} is not a directory", file.display())));
        assert_eq!(repository_gone(&gone), Some(format!("repository {} is gone", gone.display())));
    }
}
