//! Every case below is what git 2.47's `index-pack --strict` does with the object; the table is
//! checked against our functions, and (`the_table_is_what_git_does`) against git itself.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;

/// Ids that exist in the test repository of [`the_table_is_what_git_does`]: a blob, a tree
/// holding it, a commit of that tree.
struct Ids {
    blob: ObjectId,
    tree: ObjectId,
    commit: ObjectId,
}

/// The fixed objects every case links to (their ids are content hashes, the same everywhere).
fn ids() -> Ids {
    let blob = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, b"hello\n").unwrap();
    let tree =
        gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Tree, &tree_bytes(&[("100644", "f", blob)]))
            .unwrap();
    let commit =
        gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Commit, base_commit(tree).as_bytes()).unwrap();
    Ids { blob, tree, commit }
}

fn base_commit(tree: ObjectId) -> String {
    format!("tree {tree}\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nbase\n")
}

fn tree_bytes(entries: &[(&str, &str, ObjectId)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, name, id) in entries {
        out.extend_from_slice(mode.as_bytes());
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// (what, kind, bytes, git accepts it)
type Case = (String, &'static str, Vec<u8>, bool);

fn cases() -> Vec<Case> {
    let Ids { blob, tree, commit } = ids();
    let mut cases: Vec<Case> = Vec::new();
    let who = "A <a@b> 1 +0000";
    let mut c = |what: &str, text: String, ok: bool| cases.push((what.into(), "commit", text.into_bytes(), ok));
    c("plain", format!("tree {tree}\nauthor {who}\ncommitter {who}\n\nmsg\n"), true);
    c(
        "uppercase hex",
        format!("tree {}\nauthor {who}\ncommitter {who}\n\nmsg\n", tree.to_string().to_uppercase()),
        true,
    );
    c("with a parent", format!("tree {tree}\nparent {commit}\nauthor {who}\ncommitter {who}\n\nmsg\n"), true);
    c(
        "bad parent",
        format!("tree {tree}\nparent {}\nauthor {who}\ncommitter {who}\n\nm\n", &commit.to_string()[..39]),
        false,
    );
    c("no author", format!("tree {tree}\ncommitter {who}\n\nmsg\n"), false);
    c("two authors", format!("tree {tree}\nauthor {who}\nauthor {who}\ncommitter {who}\n\nmsg\n"), false);
    c("header before author", format!("tree {tree}\nencoding utf-8\nauthor {who}\ncommitter {who}\n\nm\n"), false);
    c(
        "headers after committer",
        format!("tree {tree}\nauthor {who}\ncommitter {who}\nencoding x\nfoo bar\n\nm\n"),
        true,
    );
    c("no committer", format!("tree {tree}\nauthor {who}\n\nmsg\n"), false);
    c("NUL in the message", format!("tree {tree}\nauthor {who}\ncommitter {who}\n\nm\0sg\n"), false);
    c("no body", format!("tree {tree}\nauthor {who}\ncommitter {who}\n"), true);
    c("unterminated header", format!("tree {tree}\nauthor {who}\ncommitter {who}"), false);
    let mut ident = |what: &str, ident: &str, ok: bool| {
        cases.push((
            what.into(),
            "commit",
            format!("tree {tree}\nauthor {ident}\ncommitter {who}\n\nm\n").into_bytes(),
            ok,
        ))
    };
    ident("email without its end", "A <a@b 1 +0000", false);
    ident("empty email", "A <> 1 +0000", true);
    ident("a space for a name", "  <a@b> 1 +0000", true);
    ident("no name", "<a@b> 1 +0000", false);
    ident("no space before the email", "A<a@b> 1 +0000", false);
    ident("'>' in the name", "A> <a@b> 1 +0000", false);
    ident("'<' in the email", "A <a<b> 1 +0000", false);
    ident("no email", "A 1 +0000", false);
    ident("two spaces before the date", "A <a@b>  1 +0000", true);
    ident("a tab before the date", "A <a@b> \t1 +0000", true);
    ident("no space before the date", "A <a@b>1 +0000", false);
    ident("date 0", "A <a@b> 0 +0000", true);
    ident("date 00", "A <a@b> 00 +0000", false);
    ident("zero-padded date", "A <a@b> 0123 +0000", false);
    ident("largest date", "A <a@b> 9223372036854775807 +0000", true);
    ident("date 2^63", "A <a@b> 9223372036854775808 +0000", false);
    ident("date of 25 digits", "A <a@b> 1234567890123456789012345 +0000", false);
    ident("letters in the date", "A <a@b> 12a +0000", false);
    ident("no time zone", "A <a@b> 1", false);
    ident("time zone +9999", "A <a@b> 1 +9999", true);
    ident("time zone of 3 digits", "A <a@b> 1 +000", false);
    ident("time zone without a sign", "A <a@b> 1 0000", false);
    ident("two spaces before the time zone", "A <a@b> 1  +0000", false);
    ident("space after the time zone", "A <a@b> 1 +0000 ", false);

    let mut t = |what: &str, text: String, ok: bool| cases.push((what.into(), "tag", text.into_bytes(), ok));
    let head = format!("object {commit}\ntype commit\n");
    t("plain", format!("{head}tag v1\ntagger {who}\n\nrelease\n"), true);
    t("no tagger", format!("{head}tag v1\n\nrelease of old\n"), true);
    t("a tag name that is no ref name", format!("{head}tag a..b\ntagger {who}\n\nrelease\n"), true);
    t("unknown type", format!("object {commit}\ntype foo\ntag v1\ntagger {who}\n\nx\n"), false);
    t("no type", format!("object {commit}\ntag v1\ntagger {who}\n\nrelease notes\n"), false);
    t("no tag line", format!("{head}tagger {who}\n\nrelease notes here\n"), false);
    t("bad tagger", format!("{head}tag v1\ntagger A <a@b 1 +0000\n\nrelease\n"), false);
    t("NUL in the message", format!("{head}tag v1\ntagger {who}\n\nrel\0ease\n"), true);
    t("NUL in the header", format!("{head}tag v\01\ntagger {who}\n\nrelease\n"), false);

    let mut tr = |what: &str, entries: &[(&str, &str, ObjectId)], ok: bool| {
        cases.push((what.into(), "tree", tree_bytes(entries), ok))
    };
    let null = ObjectId::null(gix::hash::Kind::Sha1);
    tr("plain", &[("100644", "a", blob), ("40000", "d", tree)], true);
    tr("empty", &[], true);
    tr("executable and link", &[("100755", "a", blob), ("120000", "b", blob)], true);
    tr("group-writable file", &[("100664", "a", blob)], true);
    tr("mode 100600", &[("100600", "a", blob)], true);
    tr("mode 644", &[("644", "a", null)], false);
    tr("mode 644 to a missing object", &[("644", "a", ObjectId::Sha1([7; 20]))], true);
    tr("mode cut to 16 bits", &[("1100644", "a", blob)], true);
    tr("zero-padded directory", &[("040000", "d", tree)], false);
    tr("submodule", &[("160000", "sub", ObjectId::Sha1([9; 20]))], true);
    tr("null id", &[("100644", "a", null)], false);
    tr(".git", &[("100644", ".git", blob)], false);
    tr(".GIT", &[("100644", ".GIT", blob)], false);
    tr(".git.", &[("100644", ".git.", blob)], false);
    tr(".git . ", &[("100644", ".git . ", blob)], false);
    tr("GIT~1", &[("100644", "GIT~1", blob)], false);
    tr(".git:x", &[("100644", ".git:x", blob)], false);
    tr("x\\.git", &[("100644", "x\\.git", blob)], false);
    tr(".g\u{200c}it", &[("100644", ".g\u{200c}it", blob)], false);
    tr(".gitx", &[("100644", ".gitx", blob)], true);
    tr(".", &[("100644", ".", blob)], false);
    tr("..", &[("100644", "..", blob)], false);
    tr("empty name", &[("100644", "", blob)], false);
    tr("a slash", &[("100644", "a/b", blob)], false);
    tr("unsorted", &[("100644", "b", blob), ("100644", "a", blob)], false);
    tr("twice", &[("100644", "a", blob), ("100644", "a", blob)], false);
    tr("file and directory", &[("100644", "a", blob), ("40000", "a", tree)], false);
    tr("a.c before directory a", &[("100644", "a.c", blob), ("40000", "a", tree)], true);
    tr("directory a before a.c", &[("40000", "a", tree), ("100644", "a.c", blob)], false);
    tr(
        "file and directory apart",
        &[("100644", "foo", blob), ("100644", "foo.bar", blob), ("40000", "foo", tree)],
        false,
    );
    let long = "x".repeat(4096);
    let longer = "x".repeat(4097);
    tr("name of 4096 bytes", &[("100644", &long, blob)], true);
    tr("name of 4097 bytes", &[("100644", &longer, blob)], false);
    tr(".gitmodules link", &[("120000", ".gitmodules", blob)], false);
    tr(".gitmodules directory", &[("40000", ".gitmodules", tree)], false);
    tr("blob for a tree", &[("40000", "d", blob)], false);
    cases.push((
        "trailing garbage".into(),
        "tree",
        [tree_bytes(&[("100644", "a", blob)]), b"1".to_vec()].concat(),
        false,
    ));
    cases.push(("truncated id".into(), "tree", tree_bytes(&[("100644", "a", blob)])[..20].to_vec(), false));
    cases.push(("mode 8".into(), "tree", tree_bytes(&[("100648", "a", blob)]), false));
    cases
}

/// Our verdict on one object: its own checks, then that what it links to exists with the kind
/// it must have (the ids of [`ids`], as in the test repository).
fn ours(kind: &str, data: &[u8]) -> Result<(), Invalid> {
    let known = ids();
    let kind_of = |id: ObjectId| {
        [(known.blob, Kind::Blob), (known.tree, Kind::Tree), (known.commit, Kind::Commit)]
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, k)| k)
    };
    let must_be = |id: ObjectId, kind: Kind| match kind_of(id) {
        Some(k) if k == kind => Ok(()),
        _ => invalid("missing", format!("{id} is not a {kind:?} here")),
    };
    match kind {
        "commit" => {
            let links = commit(data)?;
            must_be(links.tree, Kind::Tree)?;
            links.parents.into_iter().try_for_each(|p| must_be(p, Kind::Commit))
        }
        "tag" => tag(data).and_then(|(target, kind)| must_be(target, kind)),
        "tree" => {
            let mut links = Vec::new();
            tree(data, &mut links)?;
            links.into_iter().try_for_each(|link| must_be(link.id, link.kind))
        }
        other => unreachable!("{other}"),
    }
}

#[test]
fn each_case_is_judged_as_git_judges_it() {
    let mut wrong = Vec::new();
    for (what, kind, data, git_accepts) in cases() {
        let verdict = ours(kind, &data);
        if verdict.is_ok() != git_accepts {
            wrong.push(format!(
                "{kind} {what}: git {}, ours {verdict:?}",
                if git_accepts { "accepts" } else { "refuses" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn git(dir: &std::path::Path, args: &[&str], input: &[u8]) -> (bool, Vec<u8>) {
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    let output = child.wait_with_output().unwrap();
    (output.status.success(), output.stdout)
}

/// The table is not our opinion: each object is written with `git hash-object --literally`,
/// packed alone, and given to `git index-pack --strict` in a repository that has the objects it
/// links to.
#[test]
fn the_table_is_what_git_does() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.git");
    let Ids { blob, tree, commit } = ids();
    assert!(Command::new("git").args(["init", "--quiet", "--bare"]).arg(&source).status().unwrap().success());
    let write = |kind: &str, data: &[u8]| {
        let (ok, out) = git(&source, &["hash-object", "--literally", "-w", "--stdin", "-t", kind], data);
        assert!(ok, "hash-object {kind}");
        ObjectId::from_hex(String::from_utf8(out).unwrap().trim().as_bytes()).unwrap()
    };
    assert_eq!(write("blob", b"hello\n"), blob);
    assert_eq!(write("tree", &tree_bytes(&[("100644", "f", blob)])), tree);
    assert_eq!(write("commit", base_commit(tree).as_bytes()), commit);
    let mut wrong = Vec::new();
    for (i, (what, kind, data, git_accepts)) in cases().into_iter().enumerate() {
        let id = write(kind, &data);
        let (ok, pack) = git(&source, &["pack-objects", "--stdout", "-q"], format!("{id}\n").as_bytes());
        assert!(ok, "pack-objects for {kind} {what}");
        let target = dir.path().join(format!("t{i}.git"));
        assert!(Command::new("git").args(["init", "--quiet", "--bare"]).arg(&target).status().unwrap().success());
        std::fs::write(target.join("objects/info/alternates"), format!("{}\n", source.join("objects").display()))
            .unwrap();
        let (accepted, _) = git(&target, &["index-pack", "--strict", "--stdin"], &pack);
        if accepted != git_accepts {
            wrong.push(format!("{kind} {what}: the table says {git_accepts}, git says {accepted}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn gitmodules_rules() {
    let ok = |text: &str| gitmodules(text.as_bytes()).is_ok();
    assert!(ok("[submodule \"theme\"]\n\tpath = themes/x\n\turl = https://example.org/x.git\n"));
    assert!(ok("[submodule \"a\"]\n\turl = ./x/../y\n"));
    assert!(ok("[submodule \"a\"]\n\turl = ssh://-oProxy/x\n"), "git lets ssh URLs through");
    assert!(ok("[core]\n\tbare = false\n"));
    for bad in [
        "[submodule \"../x\"]\n\tpath = a\n",
        "[submodule \"a/../b\"]\n\tpath = a\n",
        "[submodule \"a\\\\..\\\\b\"]\n\tpath = a\n",
        "[submodule \"\"]\n\tpath = a\n",
        "[submodule \"a\"]\n\turl = -x\n",
        "[submodule \"a\"]\n\turl = ./a%0ab\n",
        "[submodule \"a\"]\n\turl = ../:x\n",
        "[submodule \"a\"]\n\turl = ..//x\n",
        "[submodule \"a\"]\n\turl = http::https:///x\n",
        "[submodule \"a\"]\n\turl = https://e.com:bad/x\n",
        "[submodule \"a\"]\n\turl = https://e.com/a%0a\n",
        "[submodule \"a\"]\n\tpath = -p\n",
        "[submodule \"a\"]\n\tUPDATE = !rm -rf /\n",
        "[submodule \"../x\"]\n\tpath = a\n[bad",
    ] {
        assert!(!ok(bad), "{bad:?} accepted");
    }
}

#[test]
fn gitattributes_rules() {
    assert!(gitattributes(b"*.md text\n").is_ok());
    assert!(gitattributes(&[b"a".repeat(2047), b"\n".to_vec()].concat()).is_ok());
    assert!(gitattributes(&b"a".repeat(2048)).is_err());
    assert!(gitattributes(&[b"a\0".to_vec(), b"a".repeat(3000)].concat()).is_ok(), "git reads up to a NUL");
}

/// Hostile bytes never panic, whatever the kind.
#[test]
fn hostile_bytes_are_refused_not_a_panic() {
    let mut inputs: Vec<Vec<u8>> =
        vec![Vec::new(), b"\n".to_vec(), b"tree \n".to_vec(), b"1 \0".to_vec(), vec![0xff; 70]];
    for (_, _, data, _) in cases() {
        for cut in 0..data.len().min(80) {
            inputs.push(data[..cut].to_vec());
        }
    }
    for data in &inputs {
        let _ = commit(data);
        let _ = tag(data);
        let _ = tree(data, &mut Vec::new());
        let _ = gitmodules(data);
        let _ = gitattributes(data);
    }
}
