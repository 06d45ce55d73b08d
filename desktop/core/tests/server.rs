//! The desktop core against a real `whispercms-server demo` on 127.0.0.1 (the binary `cargo
//! test --workspace` builds): clone, edit, check, save, publish, a refused publish with its
//! explanation, catching up with someone else's publish (replayed, or a conflict), offline.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use desktop_core::conflict::Choice;
use desktop_core::pages::{Page, Value};
use desktop_core::save::Author;
use desktop_core::sync::{CaughtUp, Published};
use desktop_core::Workspace;
use githost::client::{Connection, HostKeyPolicy, RemoteUrl, SshOptions};

/// The server binary: `WHISPERCMS_SERVER`, else beside this test's own directory.
fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("WHISPERCMS_SERVER") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("whispercms-server");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build --bin whispercms-server; scripts/test.sh does)",
        bin.display()
    );
    bin
}

struct Server {
    child: Child,
    ssh: u16,
    http: u16,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(server_binary())
            .args(["demo", "--data-dir"])
            .arg(data)
            .args(["--ssh-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start whispercms-server");
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = |l: &str| l.rsplit(':').next().unwrap().trim().parse::<u16>().unwrap();
        let (mut ssh, mut http) = (None, None);
        while ssh.is_none() || http.is_none() {
            let line = lines.next().expect("the server exited").unwrap();
            if let Some(a) = line.strip_prefix("ssh listening on ") {
                ssh = Some(port(a));
            } else if let Some(a) = line.strip_prefix("http listening on ") {
                http = Some(port(a));
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Server { child, ssh: ssh.unwrap(), http: http.unwrap(), data: data.to_path_buf() }
    }

    fn url(&self) -> String {
        format!("ssh://git@127.0.0.1:{}/site.git", self.ssh)
    }

    async fn connect(&self) -> Connection {
        let public = std::fs::read_to_string(self.data.join("keys/ssh_host_ed25519.pub")).unwrap();
        let key = russh::keys::PublicKey::from_openssh(public.trim()).unwrap();
        let pin = HostKeyPolicy::Fingerprint(githost::client::host_key::fingerprint(&key));
        let options = SshOptions::new(self.data.join("keys/demo_ed25519"), pin);
        Connection::connect(&RemoteUrl::parse(&self.url()).unwrap(), &options).await.expect("connect")
    }

    /// GET `path` from the live site: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
    }
}

fn author(name: &str) -> Author {
    Author { name: name.into(), email: format!("{}@example.org", name.to_lowercase()) }
}

fn edit_title(ws: &Workspace, path: &str, title: &str) {
    let mut page = Page::read(ws, path).unwrap();
    page.set("title", Value::Text(title.into())).unwrap();
    page.write(ws).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_edit_check_publish_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let conn = server.connect().await;
    let dir = tmp.path().join("My Site");
    let ws = Workspace::clone_from(&conn, &server.url(), &dir).await.expect("clone");
    assert!(dir.join("content/about.md").is_file());
    assert!(ws.changes().unwrap().is_empty(), "a fresh clone has no changes: {:?}", ws.changes());
    // git agrees: the folder is a normal clone.
    let status = Command::new("git").args(["status", "--porcelain"]).current_dir(&dir).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "{}", String::from_utf8_lossy(&status.stderr));

    // Edit, check (nothing wrong), save, publish: live.
    edit_title(&ws, "content/about.md", "About this desktop-made site");
    assert_eq!(ws.changes().unwrap().len(), 1);
    assert_eq!(ws.check("main").unwrap(), vec![]);
    let saved = ws.save("Retitle the about page", &author("Ada")).unwrap().expect("a save");
    assert_eq!(ws.save("again", &author("Ada")).unwrap(), None, "nothing new to save");
    match ws.publish(&conn, "main").await.unwrap() {
        Published::Done { commit, messages } => {
            assert_eq!(commit, saved);
            assert!(messages.iter().any(|m| m.contains("published")), "{messages:?}");
        }
        other => panic!("{other:?}"),
    }
    let (status, body) = server.get("/about/");
    assert_eq!(status, 200);
    assert!(body.contains("About this desktop-made site"), "{body}");
    assert_eq!(ws.publish(&conn, "main").await.unwrap(), Published::UpToDate);

    // A broken date: the check finds it offline, and the server says the same.
    let page = dir.join("content/blog/hello-world.md");
    let text = std::fs::read_to_string(&page).unwrap();
    let broken = text.replacen("+++\n", "+++\ndate = \"someday\"\n", 1).replacen("\ndate = 20", "\n# date = 20", 1);
    std::fs::write(&page, &broken).unwrap();
    let problems = ws.check("main").unwrap();
    assert!(problems.iter().any(|p| p.path == "content/blog/hello-world.md"), "{problems:?}");
    ws.save("A bad date", &author("Ada")).unwrap();
    match ws.publish(&conn, "main").await.unwrap() {
        Published::Refused { problems: refused, .. } => {
            assert_eq!(refused.first().map(|p| p.path.as_str()), Some("content/blog/hello-world.md"), "{refused:?}");
            assert_eq!(refused.first().map(|p| &p.message), problems.first().map(|p| &p.message), "same words");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.get("/blog/hello-world/").0, 200, "the live page is untouched");
    std::fs::write(&page, &text).unwrap();
    ws.save("Fix the date", &author("Ada")).unwrap();
    assert!(matches!(ws.publish(&conn, "main").await.unwrap(), Published::Done { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_else_published_first() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let conn = server.connect().await;
    let ada = Workspace::clone_from(&conn, &server.url(), tmp.path().join("ada")).await.unwrap();
    let bob = Workspace::clone_from(&conn, &server.url(), tmp.path().join("bob")).await.unwrap();

    edit_title(&bob, "content/blog/hello-world.md", "Bob's hello");
    bob.save("Bob's title", &author("Bob")).unwrap();
    assert!(matches!(bob.publish(&conn, "main").await.unwrap(), Published::Done { .. }));

    // Ada changed another page: her publish is behind; catching up replays her save on Bob's.
    edit_title(&ada, "content/about.md", "Ada's about");
    ada.save("Ada's title", &author("Ada")).unwrap();
    assert_eq!(ada.publish(&conn, "main").await.unwrap(), Published::Behind);
    match ada.catch_up(&conn, "main", &author("Ada")).await.unwrap() {
        CaughtUp::Updated { changed, replayed } => {
            assert!(replayed);
            assert_eq!(changed, vec!["content/blog/hello-world.md".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(Page::read(&ada, "content/blog/hello-world.md").unwrap().get("title").unwrap().contains("Bob"));
    assert!(matches!(ada.publish(&conn, "main").await.unwrap(), Published::Done { .. }));
    let (_, about) = server.get("/about/");
    let (_, hello) = server.get("/blog/hello-world/");
    assert!(about.contains("Ada&#39;s about") || about.contains("Ada's about"), "{about}");
    assert!(hello.contains("Bob&#39;s hello") || hello.contains("Bob's hello"), "{hello}");

    // Both change the same page: a conflict, named, and nothing changed on Bob's side.
    edit_title(&ada, "content/about.md", "Ada again");
    ada.save("Ada again", &author("Ada")).unwrap();
    assert!(matches!(ada.publish(&conn, "main").await.unwrap(), Published::Done { .. }));
    edit_title(&bob, "content/about.md", "Bob's about");
    bob.save("Bob's about", &author("Bob")).unwrap();
    let before = bob.head().unwrap();
    assert_eq!(
        bob.catch_up(&conn, "main", &author("Bob")).await.unwrap(),
        CaughtUp::Conflict { paths: vec!["content/about.md".into()] }
    );
    assert_eq!(bob.head().unwrap(), before);
    assert!(Page::read(&bob, "content/about.md").unwrap().get("title").unwrap().contains("Bob"));
    // Bob compares and keeps his version: a merge save the server takes as a fast-forward.
    let conflicts = bob.conflicts("main").unwrap();
    assert_eq!(conflicts.len(), 1);
    assert!(conflicts[0].theirs.as_deref().unwrap().contains("Ada again"));
    let keep = std::collections::BTreeMap::from([("content/about.md".to_string(), Choice::Mine)]);
    bob.resolve("main", &keep, &author("Bob")).unwrap();
    assert!(matches!(bob.publish(&conn, "main").await.unwrap(), Published::Done { .. }));
    let (_, about) = server.get("/about/");
    assert!(about.contains("Bob&#39;s about") || about.contains("Bob's about"), "{about}");

    // Unsaved edits are never overwritten by catching up.
    edit_title(&ada, "content/blog/_index.md", "Unsaved");
    assert_eq!(ada.catch_up(&conn, "main", &author("Ada")).await.unwrap(), CaughtUp::Unsaved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_saves_wait_and_a_new_site_starts_from_the_starter() {
    let tmp = tempfile::tempdir().unwrap();
    let author = author("Ada");
    let ws = Workspace::create_from_starter(tmp.path().join("new"), &author).unwrap();
    assert_eq!(ws.history(10).unwrap().len(), 1);
    assert!(ws.check("main").unwrap().is_empty(), "the starter is valid");
    let page = Page::new_in(&ws, "content/blog", "My first post").unwrap();
    assert_eq!(page.path, "content/blog/my-first-post.md");
    assert_eq!(page.get("draft").as_deref(), Some("true"));
    page.write(&ws).unwrap();
    assert!(ws.check("main").unwrap().is_empty());
    ws.save("First post", &author).unwrap();
    assert_eq!(ws.history(10).unwrap()[0].summary, "First post");
    assert!(Workspace::create_from_starter(tmp.path().join("new"), &author).is_err(), "not over a site");

    // No server: the connection fails clearly and every save stays.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = RemoteUrl::parse(&format!("ssh://git@127.0.0.1:{closed}/site.git")).unwrap();
    let options = SshOptions::new(tmp.path().join("none"), HostKeyPolicy::Fingerprint("SHA256:x".into()));
    assert!(Connection::connect(&url, &options).await.is_err());
    assert_eq!(ws.history(10).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_renders_the_folder_with_the_sites_own_theme() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = Workspace::create_from_starter(tmp.path().join("site"), &author("Ada")).unwrap();
    let preview = desktop_core::preview::Preview::open(&ws).unwrap();
    assert!(preview.refresh(&ws).unwrap());
    assert!(!preview.refresh(&ws).unwrap(), "nothing changed, nothing rendered");
    let home = preview.get("/").await.unwrap();
    assert_eq!((home.status, home.content_type.starts_with("text/html")), (200, true));
    // An edit not saved yet shows at once, through the theme (its stylesheet is linked).
    edit_title(&ws, "content/about.md", "Previewed before saving");
    assert!(preview.refresh(&ws).unwrap());
    let about = preview.get("/about/").await.unwrap();
    let html = String::from_utf8_lossy(&about.body);
    assert!(html.contains("Previewed before saving") && html.contains("/style.css"), "{html}");
    assert_eq!(preview.get("/style.css").await.unwrap().status, 200);
    assert_eq!(preview.get("/no-such-page/").await.unwrap().status, 404);
    assert!(ws.history(10).unwrap().len() == 1, "previewing saves nothing");
}
