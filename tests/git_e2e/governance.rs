//! Push-time governance end to end, with several users' keys and the real `git`: the default
//! role matrix cell by cell, site policies that add a role, lock-out protection and URL
//! collisions, each refused (or accepted) with the reason on the push's own output.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::*;

/// A demo server whose `access/users.toml` lists, beside the demo admin, one user per role.
struct Team {
    server: Server,
    tmp: tempfile::TempDir,
    /// The demo admin's clone.
    admin: PathBuf,
    /// (user id, role, ssh command)
    users: Vec<(String, String, String)>,
}

impl Team {
    /// `people` are (user id, roles); an empty role list means a listed key with no role.
    fn new(people: &[(&str, &[&str])]) -> Team {
        let server = Server::binary_with(&[]);
        let tmp = tempfile::tempdir().unwrap();
        let admin = server.clone(tmp.path(), "admin-clone", &[]);
        let mut users_toml = std::fs::read_to_string(admin.join("access/users.toml")).unwrap();
        let mut users = Vec::new();
        for (id, roles) in people {
            let (key, ssh) = server.new_user_key(tmp.path(), id);
            let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
            let roles: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
            users_toml.push_str(&format!(
                "\n[[user]]\nid = \"{id}\"\nroles = [{}]\nkeys = [\"{}\"]\n",
                roles.join(", "),
                public.trim()
            ));
            users.push((id.to_string(), roles.join(", ").replace('"', ""), ssh));
        }
        std::fs::write(admin.join("access/users.toml"), users_toml).unwrap();
        server.git_ok(&admin, &["commit", "-qam", "the team"]);
        server.git_ok(&admin, &["push", "-q", "origin", "main", "main:admin"]);
        Team { server, tmp, admin, users }
    }

    fn ssh_of(&self, id: &str) -> &str {
        &self.users.iter().find(|(u, _, _)| u == id).expect("known user").2
    }

    /// Run git as `id` in `dir`.
    fn git_as(&self, id: &str, dir: &Path, args: &[&str]) -> Output {
        git_command(dir, self.ssh_of(id)).args(args).output().unwrap()
    }

    /// `id`'s clone (made on first use).
    fn clone_of(&self, id: &str) -> PathBuf {
        let dir = self.tmp.path().join(format!("clone-{id}"));
        if !dir.exists() {
            let out = self.git_as(id, self.tmp.path(), &["clone", "-q", &self.server.url(), dir.to_str().unwrap()]);
            assert_success(&out, &["clone as", id]);
        }
        dir
    }

    /// As `id`: start from `origin/base`, write `file`, commit and push with `push_args`.
    fn change_and_push(&self, id: &str, base: &str, file: &str, content: &str, push_args: &[&str]) -> Output {
        let dir = self.clone_of(id);
        assert_success(&self.git_as(id, &dir, &["fetch", "-q", "origin"]), &["fetch"]);
        assert_success(&self.git_as(id, &dir, &["checkout", "-q", "-B", "work", &format!("origin/{base}")]), &["co"]);
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(content);
        std::fs::write(&path, text).unwrap();
        assert_success(&self.git_as(id, &dir, &["add", "-A"]), &["add"]);
        assert_success(&self.git_as(id, &dir, &["commit", "-qm", file]), &["commit"]);
        let mut args = vec!["push", "origin"];
        args.extend_from_slice(push_args);
        self.git_as(id, &dir, &args)
    }
}

/// What each area's cell writes: (file, appended text). Files get a per-cell suffix where the
/// area allows it, so cells never depend on each other.
fn area_file(area: &str, cell: usize) -> (String, String) {
    match area {
        "content" => (format!("content/cell-{cell}.md"), format!("+++\ntitle = \"Cell {cell}\"\n+++\nx\n")),
        "static" => (format!("static/cell-{cell}.txt"), "x\n".into()),
        "theme" => (format!("themes/extra/static/cell-{cell}.css"), "p {}\n".into()),
        "plugin" => (format!("plugins/cell-{cell}/README.md"), "x\n".into()),
        "config" => ("site.toml".into(), format!("# cell {cell}\n")),
        "access" => ("access/users.toml".into(), format!("# cell {cell}\n")),
        "policy" => (format!("policies/cell-{cell}.cedar"), "// nothing yet\n".into()),
        "secret" => panic!("a secrets cell needs the server's recipient: see secret_file"),
        other => panic!("no area {other}"),
    }
}

/// The secret area's cell: a ROPS document encrypted to the server, as the push checks demand.
fn secret_file(server: &Server, cell: usize) -> (String, String) {
    let identity = secrets::Identity::load(&server.data_dir.join("keys/age.key")).expect("the server's identity");
    let doc =
        secrets::Document::encrypt(secrets::Format::Yaml, &format!("cell: \"{cell}\"\n"), &[identity.recipient()])
            .expect("encrypt");
    (format!("secrets/cell-{cell}.yaml"), doc.text().to_string())
}

const AREAS: [&str; 8] = ["content", "static", "theme", "plugin", "config", "access", "policy", "secret"];

#[test]
fn every_cell_of_the_default_role_matrix() {
    let team = Team::new(&[
        ("pat", &["publisher"]),
        ("ed", &["editor"]),
        ("rea", &["reader"]),
        ("root", &["admin"]),
        ("nob", &[]),
    ]);
    let server = &team.server;
    // Branches to delete and to force-push, one set per user.
    for (id, _, _) in &team.users {
        commit_file(server, &team.admin, &format!("content/seed-{id}.md"), "+++\ntitle = \"Seed\"\n+++\nx\n");
        server.git_ok(&team.admin, &["push", "-q", "origin", &format!("HEAD:refs/heads/preview/del-{id}")]);
        server.git_ok(&team.admin, &["push", "-q", "origin", &format!("HEAD:refs/heads/preview/rw-{id}")]);
        server.git_ok(&team.admin, &["reset", "-q", "--hard", "origin/main"]);
    }
    // admin gets a commit main lacks, so that pushing main's line to it is a force-push.
    commit_file(server, &team.admin, "content/on-admin.md", "+++\ntitle = \"Staged\"\n+++\nx\n");
    server.git_ok(&team.admin, &["push", "-q", "origin", "HEAD:refs/heads/admin"]);

    // (role, what, allowed)
    let allowed = |role: &str, what: &str| -> bool {
        let area_ok = |area: &str| matches!(area, "content" | "static");
        match role {
            "admin" => true,
            "publisher" | "editor" => match what {
                "push main" | "main:content" | "main:static" => role == "publisher",
                w if w.starts_with("main:") => false,
                "push admin" | "create preview" | "force-push preview" | "delete preview" => true,
                "force-push admin" => false,
                w => area_ok(w.strip_prefix("admin:").unwrap()),
            },
            _ => false,
        }
    };
    let mut failures = Vec::new();
    let mut cell = 0;
    for (id, role, _) in team.users.iter().filter(|(_, r, _)| !r.is_empty()) {
        let role = role.as_str();
        let mut check = |what: &str, out: Output, denial: &str| {
            let err = stderr(&out);
            let expected = allowed(role, what);
            if out.status.success() != expected {
                failures.push(format!(
                    "{id} ({role}) {what}: expected {}, got:\n{err}",
                    if expected { "allowed" } else { "denied" }
                ));
            } else if !expected && !err.contains(&format!("remote: denied: {id} ({role}) may not {denial}")) {
                failures.push(format!("{id} ({role}) {what}: refused without naming it ({denial}):\n{err}"));
            }
        };
        // Reading.
        let clone = team.tmp.path().join(format!("read-{id}"));
        let out = team.git_as(id, team.tmp.path(), &["clone", "-q", &server.url(), clone.to_str().unwrap()]);
        assert_success(&out, &["every role may clone:", id]);

        // Branch actions.
        cell += 1;
        let (file, text) = area_file("content", cell);
        check("push main", team.change_and_push(id, "main", &file, &text, &["HEAD:main"]), "push branch main");
        cell += 1;
        let (file, text) = area_file("content", cell);
        check("push admin", team.change_and_push(id, "admin", &file, &text, &["HEAD:admin"]), "push branch admin");
        cell += 1;
        let (file, text) = area_file("content", cell);
        let new = format!("HEAD:refs/heads/preview/new-{id}");
        check("create preview", team.change_and_push(id, "main", &file, &text, &[&new]), "create branch preview/new");
        cell += 1;
        let (file, text) = area_file("content", cell);
        let rw = format!("+HEAD:refs/heads/preview/rw-{id}");
        let out = team.change_and_push(id, "main", &file, &text, &[&rw]);
        check("force-push preview", out, &format!("force-push branch preview/rw-{id}"));
        cell += 1;
        let (file, text) = area_file("content", cell);
        check(
            "force-push admin",
            team.change_and_push(id, "main", &file, &text, &["+HEAD:admin"]),
            "force-push branch admin",
        );
        let dir = team.clone_of(id);
        let del = format!(":refs/heads/preview/del-{id}");
        check(
            "delete preview",
            team.git_as(id, &dir, &["push", "origin", &del]),
            &format!("delete branch preview/del-{id}"),
        );

        // Paths, area by area, on admin (and on main for those who may push there).
        for area in AREAS {
            for branch in ["admin", "main"] {
                if branch == "main" && !matches!(role, "publisher" | "admin") {
                    continue;
                }
                cell += 1;
                let (file, text) = match area {
                    "secret" => secret_file(server, cell),
                    _ => area_file(area, cell),
                };
                let out = team.change_and_push(id, branch, &file, &text, &[&format!("HEAD:{branch}")]);
                let denial = if role == "reader" {
                    format!("push branch {branch}")
                } else {
                    format!("change {file} on {branch}")
                };
                check(&format!("{branch}:{area}"), out, &denial);
            }
        }
    }
    // A key listed with no role may not even read.
    let out = team.git_as("nob", team.tmp.path(), &["clone", "-q", &server.url(), "nob-clone"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("denied: nob (no role) may not read branch main"), "{}", stderr(&out));
    assert!(failures.is_empty(), "{} cell(s) wrong:\n{}", failures.len(), failures.join("\n---\n"));
    server.assert_repository_sound();
}

#[test]
fn a_site_policy_adds_a_role() {
    let team = Team::new(&[("dora", &[])]);
    let server = &team.server;
    let admin = &team.admin;
    let users = std::fs::read_to_string(admin.join("access/users.toml")).unwrap();
    let with_designer = users.replace("id = \"dora\"\nroles = []", "id = \"dora\"\nroles = [\"designer\"]");
    assert_ne!(users, with_designer);
    std::fs::write(admin.join("access/users.toml"), &with_designer).unwrap();
    server.git_ok(admin, &["commit", "-qam", "dora designs"]);
    // No policy names the role yet.
    let out = server.git_out(admin, &["push", "origin", "main"]);
    assert!(stderr(&out).contains("access/users.toml: user \"dora\": unknown role \"designer\""), "{}", stderr(&out));

    // A broken policy is refused with its file and line, and the schema is enforced.
    std::fs::create_dir_all(admin.join("policies")).unwrap();
    std::fs::write(
        admin.join("policies/design.cedar"),
        "// Designers.\npermit (principal in WhisperCMS::Role::\"designer\", action, resource)\nwhen { resource.colour == \"red\" };\n",
    )
    .unwrap();
    server.git_ok(admin, &["add", "-A"]);
    server.git_ok(admin, &["commit", "-qm", "a broken policy"]);
    let out = server.git_out(admin, &["push", "origin", "main"]);
    let err = stderr(&out);
    assert!(err.contains("policies/design.cedar: does not match the schema: line 3:"), "{err}");

    // A valid one: designers may read, push to admin and change the theme there.
    std::fs::write(
        admin.join("policies/design.cedar"),
        "// Designers own the theme, on the staging branch.\n\
         @id(\"designer-read\")\n\
         permit (principal in WhisperCMS::Role::\"designer\", action == WhisperCMS::Action::\"read\", resource);\n\
         @id(\"designer-admin\")\n\
         permit (principal in WhisperCMS::Role::\"designer\", action == WhisperCMS::Action::\"push\", resource)\n\
         when { resource.name == \"admin\" };\n\
         @id(\"designer-theme\")\n\
         permit (principal in WhisperCMS::Role::\"designer\", action == WhisperCMS::Action::\"change\", resource)\n\
         when { resource in WhisperCMS::Area::\"theme\" && context.branch == \"admin\" };\n",
    )
    .unwrap();
    server.git_ok(admin, &["add", "-A"]);
    server.git_ok(admin, &["commit", "-qm", "designers"]);
    server.git_ok(admin, &["push", "-q", "origin", "main"]);

    let out = team.change_and_push("dora", "admin", "themes/extra/static/site.css", "body {}\n", &["HEAD:admin"]);
    assert_success(&out, &["designer pushes the theme"]);
    let out = team.change_and_push("dora", "admin", "content/by-dora.md", "+++\ntitle = \"x\"\n+++\n", &["HEAD:admin"]);
    assert!(
        stderr(&out)
            .contains("denied: dora (designer) may not change content/by-dora.md on admin (no policy permits it)"),
        "{}",
        stderr(&out)
    );
    let out = team.change_and_push("dora", "main", "themes/extra/static/x.css", "a {}\n", &["HEAD:main"]);
    assert!(stderr(&out).contains("denied: dora (designer) may not push branch main"), "{}", stderr(&out));
    server.assert_repository_sound();
}

#[test]
fn a_push_that_would_lock_everyone_out_is_refused() {
    let team = Team::new(&[("ed", &["editor"])]);
    let server = &team.server;
    let admin = &team.admin;
    let users = std::fs::read_to_string(admin.join("access/users.toml")).unwrap();
    let before = server.server_refs();
    let expect_lockout = |what: &str| {
        server.git_ok(admin, &["add", "-A"]);
        server.git_ok(admin, &["commit", "-qm", what]);
        let out = server.git_out(admin, &["push", "origin", "main"]);
        assert!(!out.status.success(), "{what} must be refused");
        assert!(stderr(&out).contains("remote: lock-out protection: "), "{what}: {}", stderr(&out));
        assert_eq!(server.server_refs(), before, "{what}: nothing moved");
        server.git_ok(admin, &["reset", "-q", "--hard", "origin/main"]);
    };
    // The only admin demotes themself.
    std::fs::write(admin.join("access/users.toml"), users.replace("roles = [\"admin\"]", "roles = [\"editor\"]"))
        .unwrap();
    expect_lockout("demote the last admin");
    // A policy forbids everyone to change access/.
    std::fs::create_dir_all(admin.join("policies")).unwrap();
    std::fs::write(
        admin.join("policies/freeze.cedar"),
        "@id(\"freeze-access\")\nforbid (principal, action, resource in WhisperCMS::Area::\"access\");\n",
    )
    .unwrap();
    expect_lockout("freeze access/");
    // Every user removed.
    std::fs::write(admin.join("access/users.toml"), "# nobody\n").unwrap();
    expect_lockout("remove everyone");

    // Making someone else the admin first is fine.
    std::fs::write(
        admin.join("access/users.toml"),
        users
            .replace("roles = [\"admin\"]", "roles = [\"reader\"]")
            .replace("id = \"ed\"\nroles = [\"editor\"]", "id = \"ed\"\nroles = [\"admin\"]"),
    )
    .unwrap();
    let now = std::fs::read_to_string(admin.join("access/users.toml")).unwrap();
    assert!(now.contains("id = \"ed\"\nroles = [\"admin\"]"), "{now}");
    server.git_ok(admin, &["commit", "-qam", "ed takes over"]);
    server.git_ok(admin, &["push", "-q", "origin", "main"]);
    server.assert_repository_sound();
}

#[test]
fn every_url_belongs_to_one_document() {
    let server = Server::binary_with(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    let before = server.server_refs();
    // Same URL as an existing page (the served index answers), an alias onto an existing page,
    // two new pages on one URL, and a URL the server answers itself.
    std::fs::create_dir_all(clone.join("content/about")).unwrap();
    std::fs::write(clone.join("content/about/index.md"), "+++\ntitle = \"About again\"\n+++\n").unwrap();
    std::fs::write(clone.join("content/moved.md"), "+++\ntitle = \"Moved\"\naliases = [\"/blog/hello-world/\"]\n+++\n")
        .unwrap();
    std::fs::write(clone.join("content/twin-a.md"), "+++\ntitle = \"A\"\npath = \"/twins/\"\n+++\n").unwrap();
    std::fs::write(clone.join("content/twin-b.md"), "+++\ntitle = \"B\"\npath = \"/twins/\"\n+++\n").unwrap();
    std::fs::write(clone.join("content/feed.md"), "+++\ntitle = \"Feed\"\npath = \"/rss.xml\"\n+++\n").unwrap();
    server.git_ok(&clone, &["add", "-A"]);
    server.git_ok(&clone, &["commit", "-qm", "colliding URLs"]);
    for target in ["main", "refs/heads/preview/urls"] {
        let out = server.git_out(&clone, &["push", "origin", &format!("HEAD:{target}")]);
        assert!(!out.status.success(), "{target}");
        let err = stderr(&out);
        for expected in [
            "content/about/index.md: URL /about/ is claimed by content/about.md and content/about/index.md",
            "content/moved.md: URL /blog/hello-world/ is claimed by content/blog/hello-world.md and content/moved.md (as an alias)",
            "content/twin-a.md: URL /twins/ is claimed by content/twin-a.md and content/twin-b.md",
            "content/feed.md: URL /rss.xml is the server's own",
        ] {
            assert!(err.contains(expected), "{target}: missing {expected:?} in:\n{err}");
        }
        assert!(err.contains("4 problem(s), nothing was stored"), "{target}: {err}");
    }
    assert_eq!(server.server_refs(), before);
    // Moving a page and leaving an alias at its old URL is fine, in one push.
    server.git_ok(&clone, &["reset", "-q", "--hard", "origin/main"]);
    server.git_ok(&clone, &["mv", "content/about.md", "content/who.md"]);
    std::fs::write(clone.join("content/who.md"), "+++\ntitle = \"Who we are\"\naliases = [\"/about/\"]\n+++\nUs.\n")
        .unwrap();
    server.git_ok(&clone, &["commit", "-qam", "rename about"]);
    server.git_ok(&clone, &["push", "-q", "origin", "main"]);
    let (status, head, _) = http_get(server.http_port.unwrap(), "/about/");
    assert_eq!(status, 301, "{head}");
    server.assert_repository_sound();
}

#[test]
fn policy_check_explains_decisions_against_a_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("access")).unwrap();
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("access/users.toml"), "[[user]]\nid = \"alice\"\nroles = [\"editor\"]\n").unwrap();
    let check = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_whispercms-server"))
            .args(["policy", "check", "--dir"])
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), stderr(&out))
    };
    let (code, out, _) =
        check(&["--user", "alice", "--action", "change", "--path", "content/a.md", "--branch", "admin"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "allowed: alice (editor) may change content/a.md on admin (permitted by editor-content)\n")
    );
    let (code, out, _) = check(&["--user", "alice", "--action", "push", "--branch", "main"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "denied: alice (editor) may not push branch main (no policy permits it)\n")
    );
    let (code, out, err) = check(&["--user", "dora", "--role", "publisher", "--action", "push", "--branch", "main"]);
    assert_eq!(code, Some(0), "{out}{err}");
    // A site policy in the checkout is taken into account…
    std::fs::write(
        dir.join("policies/freeze.cedar"),
        "@id(\"freeze\")\nforbid (principal, action == WhisperCMS::Action::\"change\", resource)\nwhen { context.branch == \"admin\" };\n",
    )
    .unwrap();
    let (code, out, _) =
        check(&["--user", "alice", "--action", "change", "--path", "content/a.md", "--branch", "admin"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "denied: alice (editor) may not change content/a.md on admin (forbidden by freeze)\n")
    );
    // …and broken rules are named with file and line, exit 2.
    std::fs::write(dir.join("policies/bad.cedar"), "permit (principal, action, resource)\nwhen { 1 + };\n").unwrap();
    let (code, _, err) = check(&["--user", "alice", "--action", "read"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("policies/bad.cedar: line 2:"), "{err}");
    let (code, _, err) = check(&["--user", "alice", "--action", "fly"]);
    assert_eq!(code, Some(2), "clap refuses unknown actions: {err}");
}
