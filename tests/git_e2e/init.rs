//! `whispercms-server init` as a new operator runs it: flags only, then `serve` with the written
//! settings, then a clone that checks the host key against the line `init` printed.

use std::path::Path;
use std::process::Command;

use crate::support::{
    assert_success, file_mode as mode, free_port, git_command, http_get, keygen, server_command as server_cmd,
    ssh_trusting, Server,
};

#[test]
fn init_then_serve_then_clone_with_the_printed_host_key() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let config = t.join("etc/whispercms/settings.toml");
    let data = t.join("lib/whispercms");
    let admin = t.join("alice");
    keygen(&admin, "alice@laptop");
    let ssh_port = free_port();
    let ssh_listen = format!("127.0.0.1:{ssh_port}");
    let args = |config: &Path, data: &Path| -> Vec<String> {
        [
            "--config",
            config.to_str().unwrap(),
            "init",
            "--admin-key",
            t.join("alice.pub").to_str().unwrap(),
            "--admin-id",
            "alice",
            "--domain",
            "localhost",
            "--data-dir",
            data.to_str().unwrap(),
            "--ssh-listen",
            &ssh_listen,
            "--http-listen",
            "127.0.0.1:0",
        ]
        .map(String::from)
        .to_vec()
    };
    let argv = args(&config, &data);
    let out = server_cmd(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_success(&out, &["init"]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();

    // What it wrote, and with which permissions.
    assert_eq!(mode(&config), 0o640);
    for key in ["keys/ssh_host_ed25519", "keys/preview_secret", "keys/age.key"] {
        assert_eq!(mode(&data.join(key)), 0o600, "{key}");
    }
    let settings = std::fs::read_to_string(&config).unwrap();
    assert!(settings.contains(&format!("listen = \"{ssh_listen}\"")), "{settings}");
    assert!(settings.contains("max_pack_bytes = 2147483648"), "every key at its default, commented: {settings}");
    let fingerprint =
        Command::new("ssh-keygen").arg("-lf").arg(data.join("keys/ssh_host_ed25519.pub")).output().unwrap();
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout).split_whitespace().nth(1).unwrap().to_string();
    assert!(printed.contains(&fingerprint), "the fingerprint to check ({fingerprint}) is printed:\n{printed}");
    assert!(printed.contains(&format!("git clone ssh://git@localhost:{ssh_port}/site.git")), "{printed}");

    // A second init changes nothing and says why.
    let before = std::fs::read(data.join("keys/ssh_host_ed25519")).unwrap();
    let again = server_cmd(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read(data.join("keys/ssh_host_ed25519")).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), settings);

    // Serve it; clone as alice, trusting only the known_hosts line init printed.
    let server = Server::serve_with_config(&config, &data, &admin);
    let known_hosts = t.join("known_hosts");
    let line = printed.lines().find_map(|l| l.trim().strip_prefix("known_hosts line: ")).expect("a known_hosts line");
    std::fs::write(&known_hosts, format!("{line}\n")).unwrap();
    let ssh = ssh_trusting(&admin, &known_hosts);
    let url = format!("ssh://git@localhost:{ssh_port}/site.git");
    let out = git_command(t, &ssh).args(["clone", "-q", &url, "site"]).output().unwrap();
    assert_success(&out, &["clone with the printed host key"]);
    let site = t.join("site");
    let users = std::fs::read_to_string(site.join("access/users.toml")).unwrap();
    assert!(users.contains("id = \"alice\"") && users.contains("alice@laptop"), "{users}");
    assert!(std::fs::read_to_string(site.join("site.toml")).unwrap().contains("https://localhost"));

    // Alice is an admin: she may push main, and it is served.
    std::fs::write(site.join("content/first.md"), "+++\ntitle = \"First\"\n+++\nWritten by alice.\n").unwrap();
    for args in [&["add", "-A"][..], &["commit", "-qm", "first page"], &["push", "-q", "origin", "main"]] {
        let out = git_command(&site, &ssh).args(args).output().unwrap();
        assert_success(&out, args);
    }
    let (status, _, body) = http_get(server.http_port.unwrap(), "/first/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Written by alice."));
    server.assert_repository_sound();
}

#[test]
fn init_empty_holds_only_the_configuration_and_the_admin() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    keygen(&t.join("k"), "root@host");
    let config = t.join("settings.toml");
    let out = server_cmd(&[
        "--config",
        config.to_str().unwrap(),
        "init",
        "--empty",
        "--admin-key",
        t.join("k.pub").to_str().unwrap(),
        "--data-dir",
        t.join("data").to_str().unwrap(),
    ]);
    assert_success(&out, &["init --empty"]);
    let files = Command::new("git")
        .args(["ls-tree", "-r", "--name-only", "main"])
        .current_dir(t.join("data/repos/site.git"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&files.stdout), "access/users.toml\nsite.toml\n");

    // Without a key and without a terminal to ask on, init says what it needs; a private key is
    // refused; neither leaves anything behind.
    let config2 = t.join("other.toml");
    let out =
        server_cmd(&["--config", config2.to_str().unwrap(), "init", "--data-dir", t.join("d2").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-key"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = server_cmd(&[
        "--config",
        config2.to_str().unwrap(),
        "init",
        "--admin-key",
        t.join("k").to_str().unwrap(),
        "--data-dir",
        t.join("d2").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("private key"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!config2.exists() && !t.join("d2").exists());

    // `serve` without a settings file points at init.
    let out = server_cmd(&["--config", t.join("none.toml").to_str().unwrap(), "serve"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("whispercms-server init"));
}
