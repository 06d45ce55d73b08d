//! The fixed repository the protocol targets talk to: a small site history (two branches, an
//! annotated tag) written by `git fast-import` with fixed dates, so its object ids are the same
//! on every machine and the seeds captured against it (`examples/seeds.rs`) stay meaningful.
//!
//! It is made once per process in the process's scratch directory ([`scratch`]). Targets never
//! change it: pushes are refused by their pre-receive hook.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The history, in `git fast-import`'s format.
pub const HISTORY: &str = r#"blob
mark :1
data <<END
title = "Fuzz"
base_url = "https://fuzz.example"
END

blob
mark :2
data <<END
+++
title = "Home"
+++
Welcome.
END

blob
mark :3
data <<END
+++
title = "Hello"
date = 2024-01-02
[taxonomies]
tags = ["a", "b"]
+++
Hello, see [the home](@/_index.md).

```rust,linenos
fn main() {}
```
END

blob
mark :4
data <<END
---
title: Second
draft: true
---
{{< figure src="x.png" >}}
END

commit refs/heads/main
mark :10
author Ada <ada@example.org> 1700000000 +0000
committer Ada <ada@example.org> 1700000000 +0000
data <<END
First page
END
M 100644 :1 site.toml
M 100644 :2 content/_index.md

commit refs/heads/main
mark :11
author Ada <ada@example.org> 1700000100 +0100
committer Ada <ada@example.org> 1700000100 +0100
data <<END
Hello
END
from :10
M 100644 :3 content/blog/hello.md

commit refs/heads/admin
mark :12
author Bob <bob@example.org> 1700000200 -0500
committer Bob <bob@example.org> 1700000200 -0500
data <<END
Draft
END
from :11
M 100644 :4 content/blog/second.md

tag v1
from :11
tagger Ada <ada@example.org> 1700000300 +0000
data <<END
First release
END

"#;

/// The fixed repository: a bare repository with [`HISTORY`], `HEAD` on `main`.
pub struct Fixed {
    /// The bare repository's directory.
    pub git_dir: PathBuf,
    /// The same, opened by the Git host.
    pub repo: githost::Repository,
}

/// This process's scratch directory, `whispercms-fuzz-<pid>` in the temporary directory. A
/// static is never dropped, so the directories of processes that have ended (a fuzzer stopped,
/// a test run over) are removed here, when the next one starts.
pub fn scratch() -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let temp = std::env::temp_dir();
        for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else { continue };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = temp.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the scratch directory");
        dir
    })
}

const PREFIX: &str = "whispercms-fuzz-";

/// The process's fixed repository, made on first use.
pub fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let git_dir = scratch().join("site.git");
        create(&git_dir);
        let repo = githost::Repository::open_or_init("site", &git_dir).expect("the fixed repository opens");
        Fixed { git_dir, repo }
    })
}

/// Held by every target that uses the fixed repository: a target checks that a conversation
/// left no quarantine behind, which it could not tell from another's if two ran at once (tests
/// run in threads; the fuzzer runs one input at a time).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write [`HISTORY`] into a new bare repository at `git_dir` with the `git` CLI.
pub fn create(git_dir: &Path) {
    let status = Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(git_dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git init failed");
    let mut import = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import starts");
    import.stdin.take().expect("stdin").write_all(HISTORY.as_bytes()).expect("git fast-import reads");
    assert!(import.wait().expect("git fast-import ends").success(), "git fast-import failed");
}
