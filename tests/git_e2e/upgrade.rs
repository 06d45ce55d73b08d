//! Upgrades: this binary on an installation written by an earlier release. Each release adds the
//! installation its `init` and `serve` left behind (`tests/fixtures/installation-<version>.tar.gz`:
//! settings, keys, repository, index); every later binary must serve it as it is — settings
//! read, an index of an older schema rebuilt from Git, the same host key, pushes taken.

use std::process::Command;

use crate::support::{assert_success, free_port, git_command, http_get, Server};

/// Installations written by releases: (version, archive).
const RELEASES: [(&str, &str); 1] = [("0.1.0", "installation-0.1.0.tar.gz")];

#[test]
fn installations_of_earlier_releases_serve_and_take_pushes() {
    for (version, archive) in RELEASES {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(archive);
        let out = Command::new("tar").arg("-xzf").arg(&fixture).arg("-C").arg(t).output().unwrap();
        assert_success(&out, &["tar -x", version]);
        let refs_before = std::fs::read_to_string(t.join("data/repos/site.git/refs/heads/main")).unwrap();
        // The listen addresses are the only change: the test needs free ports.
        let settings = std::fs::read_to_string(t.join("settings.toml")).unwrap();
        let settings = settings
            .replace("\"127.0.0.1:22622\"", &format!("\"127.0.0.1:{}\"", free_port()))
            .replace("\"127.0.0.1:28080\"", "\"127.0.0.1:0\"");
        std::fs::write(t.join("settings.toml"), settings).unwrap();
        let key = t.join("admin_ed25519");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

        let server = Server::serve_with_config(&t.join("settings.toml"), &t.join("data"), &key);
        let (status, _, body) = http_get(server.http_port.unwrap(), "/");
        assert_eq!(status, 200, "{version}: {body}");
        assert!(body.contains("Whisper Notes"), "{version}: the starter site: {body}");
        let (status, _, _) = http_get(server.http_port.unwrap(), "/blog/hello-world/");
        assert_eq!(status, 200, "{version}");

        // The admin of that release pushes with this one.
        let clone = server.clone(t, "site", &[]);
        assert_eq!(server.git_ok(&clone, &["rev-parse", "HEAD"]).trim(), refs_before.trim(), "{version}");
        std::fs::write(clone.join("content/upgraded.md"), "+++\ntitle = \"Upgraded\"\n+++\nStill here.\n").unwrap();
        for args in [&["add", "-A"][..], &["commit", "-qm", "after the upgrade"], &["push", "-q", "origin", "main"]] {
            let out = git_command(&clone, &server.ssh_command()).args(args).output().unwrap();
            assert_success(&out, args);
        }
        let (status, _, body) = http_get(server.http_port.unwrap(), "/upgraded/");
        assert_eq!(status, 200, "{version}: {body}");
        server.assert_repository_sound();
    }
}
