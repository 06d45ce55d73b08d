//! `backup` while the server takes pushes, `restore` into an empty directory, and the restored
//! server serving the same site with the same host key.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::{
    assert_success, file_mode, free_port, git_command, http_get, keygen, server_command as server_cmd, ssh_trusting,
    Server,
};

fn refs(git_dir: &std::path::Path) -> String {
    let out = Command::new("git")
        .args(["for-each-ref", "--format=%(objectname) %(refname)"])
        .current_dir(git_dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_backup_taken_during_pushes_restores_to_a_sound_repository_and_the_same_site() {
    let server = Server::binary_with(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let work = server.clone(tmp.path(), "work", &[]);

    // Pushes go on while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (stop, work, ssh) = (stop.clone(), work.clone(), server.ssh_command());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) || n < 3 {
                n += 1;
                let page = format!("content/during-{n}.md");
                std::fs::write(work.join(&page), format!("+++\ntitle = \"During {n}\"\n+++\nx\n")).unwrap();
                for args in [&["add", "-A"][..], &["commit", "-qm", &page], &["push", "-q", "origin", "main"]] {
                    let out = git_command(&work, &ssh).args(args).output().unwrap();
                    assert_success(&out, args);
                }
            }
            n
        })
    };
    let archive = tmp.path().join("site.backup");
    let data = server.data_dir.to_str().unwrap().to_string();
    let out = server_cmd(&[
        "--config",
        "/nonexistent/settings.toml",
        "backup",
        archive.to_str().unwrap(),
        "--data-dir",
        &data,
    ]);
    stop.store(true, Ordering::Relaxed);
    let pushes = pusher.join().unwrap();
    assert_success(&out, &["backup"]);
    assert!(pushes >= 3);
    assert_eq!(file_mode(&archive), 0o600, "it holds private keys");

    // The archive's refs are a state the server had: main is an ancestor of (or is) main now.
    let restored = tmp.path().join("restored");
    let out = server_cmd(&[
        "--config",
        tmp.path().join("etc/settings.toml").to_str().unwrap(),
        "restore",
        archive.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert_success(&out, &["restore"]);
    let git_dir = restored.join("repos/site.git");
    let fsck = Command::new("git").args(["fsck", "--strict", "--no-progress"]).current_dir(&git_dir).output().unwrap();
    assert_success(&fsck, &["fsck of the restored repository"]);
    let restored_main = refs(&git_dir)
        .lines()
        .find(|l| l.ends_with(" refs/heads/main"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let ancestor = Command::new("git")
        .args(["merge-base", "--is-ancestor", &restored_main, "refs/heads/main"])
        .current_dir(&server.repo_dir)
        .status()
        .unwrap();
    assert!(ancestor.success(), "the backup's main is a commit the server had");
    // The keys came back as they were (clients' known_hosts still hold).
    for key in ["ssh_host_ed25519", "preview_secret", "age.key", "demo_ed25519"] {
        assert_eq!(
            std::fs::read(restored.join("keys").join(key)).unwrap(),
            std::fs::read(server.data_dir.join("keys").join(key)).unwrap(),
            "{key}"
        );
        assert_eq!(file_mode(&restored.join("keys").join(key)), 0o600);
    }

    // Restoring again, into the same place, changes nothing and says why.
    let again = server_cmd(&["restore", archive.to_str().unwrap(), "--data-dir", restored.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    // The restored server serves the same site: bring the original to the same commit first.
    let restored_server = Server::binary_at(&restored, &["--empty"]);
    let (status, _, body) = http_get(restored_server.http_port.unwrap(), "/about/");
    assert_eq!(status, 200);
    let (_, _, original) = http_get(server.http_port.unwrap(), "/about/");
    assert_eq!(body, original);
    assert_eq!(refs(&restored_server.repo_dir), refs(&git_dir));
    restored_server.assert_repository_sound();
    server.assert_repository_sound();
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // Not a tar; a tar with a path outside keys/; a tar without a manifest.
    std::fs::write(t.join("garbage"), b"not an archive at all").unwrap();
    std::fs::create_dir_all(t.join("evil/keys")).unwrap();
    std::fs::write(t.join("evil/whispercms-backup.toml"), "format = 1\n").unwrap();
    std::fs::write(t.join("evil/x"), "x").unwrap();
    let tar = |name: &str, files: &[&str]| {
        let out = Command::new("tar")
            .arg("-cf")
            .arg(t.join(name))
            .arg("-C")
            .arg(t.join("evil"))
            .args(files)
            .output()
            .unwrap();
        assert_success(&out, &["tar"]);
    };
    tar("outside.tar", &["whispercms-backup.toml", "x"]);
    tar("nomanifest.tar", &["x"]);
    for (name, expected) in
        [("garbage", "archive"), ("outside.tar", "unexpected entry"), ("nomanifest.tar", "unexpected entry")]
    {
        let dir = t.join(format!("into-{name}"));
        let out = server_cmd(&[
            "--config",
            t.join("s.toml").to_str().unwrap(),
            "restore",
            t.join(name).to_str().unwrap(),
            "--data-dir",
            dir.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!dir.join("repos").exists(), "{name}: a repository was made");
    }
}

/// An installation made by `init` (settings file, keys, repository), backed up with its settings
/// and restored elsewhere: the restored settings point at the new data directory, and clients
/// that trusted the old host key connect to the restored server without a warning.
#[test]
fn an_installation_restores_elsewhere_with_its_settings_and_host_key() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    keygen(&t.join("op"), "op");
    let ssh_port = free_port();
    let (old_config, old_data) = (t.join("a/settings.toml"), t.join("a/data"));
    let init = server_cmd(&[
        "--config",
        old_config.to_str().unwrap(),
        "init",
        "--admin-key",
        t.join("op.pub").to_str().unwrap(),
        "--data-dir",
        old_data.to_str().unwrap(),
        "--ssh-listen",
        &format!("127.0.0.1:{ssh_port}"),
        "--http-listen",
        "127.0.0.1:0",
    ]);
    assert_success(&init, &["init"]);
    let printed = String::from_utf8_lossy(&init.stdout).into_owned();
    let known = printed.lines().find_map(|l| l.trim().strip_prefix("known_hosts line: ")).unwrap().to_string();

    let archive = t.join("x.backup");
    let out = server_cmd(&["--config", old_config.to_str().unwrap(), "backup", archive.to_str().unwrap()]);
    assert_success(&out, &["backup with the settings file"]);
    std::fs::remove_dir_all(t.join("a")).unwrap(); // the old machine is gone

    let (new_config, new_data) = (t.join("b/etc/settings.toml"), t.join("b/data"));
    let out = server_cmd(&[
        "--config",
        new_config.to_str().unwrap(),
        "restore",
        archive.to_str().unwrap(),
        "--data-dir",
        new_data.to_str().unwrap(),
    ]);
    assert_success(&out, &["restore with the settings file"]);
    let settings = std::fs::read_to_string(&new_config).unwrap();
    assert!(settings.contains(&format!("data_dir = \"{}\"", new_data.display())), "{settings}");
    assert!(settings.contains(&format!("listen = \"127.0.0.1:{ssh_port}\"")), "the rest as it was: {settings}");
    assert!(settings.contains("# repositories, keys"), "comments kept: {settings}");

    let server = Server::serve_with_config(&new_config, &new_data, &t.join("op"));
    assert_eq!(http_get(server.http_port.unwrap(), "/").0, 200);
    std::fs::write(t.join("known_hosts"), format!("{known}\n")).unwrap();
    let ssh = ssh_trusting(&t.join("op"), &t.join("known_hosts"));
    let url = format!("ssh://git@127.0.0.1:{ssh_port}/site.git");
    let out = git_command(t, &ssh).args(["clone", "-q", &url, "clone"]).output().unwrap();
    assert_success(&out, &["clone from the restored server, trusting the old host key"]);
    server.assert_repository_sound();
}
