//! Secrets end to end: `secrets/` files made with `whispercms-server secrets`, checked at push
//! (plain text, another recipient, a changed value: refused with the file), used by the
//! webhook outbox and by mail (a local SMTP server the test starts) from the snapshot they
//! belong to, and never reachable by a plugin — not through a return value, an error message,
//! its settings, a log line, a page or a route reply.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

const TOKEN: &str = "tok-Zq81vX0pLk3m";
const API_KEY: &str = "key-Wm5c0Tq2Ys8d";

/// `whispercms-server secrets ARGS` with `stdin`; its output.
fn secrets_cli(args: &[&str], identity: &Path, stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_whispercms-server"))
        .arg("secrets")
        .args(args)
        .arg("--identity")
        .arg(identity)
        .env("WHISPERCMS_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run secrets");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A one-shot HTTP receiver: the request it got, once it got it.
fn receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains("}") {
            let n = s.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
        let _ = tx.send(text);
    });
    (port, rx)
}

#[test]
fn secrets_are_checked_at_push_used_by_webhooks_and_never_reach_plugins() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("server.log");
    let server = Server::binary_logging_to(&log);
    let http = server.http_port.unwrap();
    let identity = server.data_dir.join("keys/age.key");
    let recipient = secrets_cli(&["recipient"], &identity, "");
    assert_success(&recipient, &["secrets recipient"]);
    let recipient = String::from_utf8(recipient.stdout).unwrap().trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");

    // The site's webhook, made with the CLI in a clone and pushed.
    let (port, delivered) = receiver();
    let url = format!("http://127.0.0.1:{port}/hook/{TOKEN}-in-path");
    let clone = server.clone(tmp.path(), "site", &[]);
    let file = clone.join("secrets/webhooks.yaml");
    let file_arg = file.to_str().unwrap();
    assert_success(
        &secrets_cli(&["set", file_arg, "contact.url", "--recipient", &recipient], &identity, &url),
        &["set url"],
    );
    assert_success(&secrets_cli(&["set", file_arg, "contact.token"], &identity, &format!("{TOKEN}\n")), &["set token"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(TOKEN) && text.contains(&recipient), "{text}");
    let got = secrets_cli(&["get", file_arg, "contact.token"], &identity, "");
    assert_eq!(String::from_utf8_lossy(&got.stdout), TOKEN);
    // An API endpoint with its key in a header of its own.
    let (api_port, api_got) = receiver();
    let api = clone.join("secrets/endpoints.yaml");
    let api_arg = api.to_str().unwrap();
    for (key, value) in [
        ("news.url", format!("http://127.0.0.1:{api_port}/v1/subscribers")),
        ("news.header", "X-Api-Key".to_string()),
        ("news.value", API_KEY.to_string()),
        ("news.method", "PUT".to_string()),
    ] {
        assert_success(&secrets_cli(&["set", api_arg, key], &identity, &value), &["set", key]);
    }

    // A plugin that tries every way to see the webhook's secrets.
    let config = std::fs::read_to_string(clone.join("site.toml")).unwrap();
    std::fs::write(clone.join("site.toml"), config.replace("plugins = [", "plugins = [\"leaky\", ")).unwrap();
    std::fs::write(
        clone.join("policies/leaky.cedar"),
        "permit (principal == WhisperCMS::Plugin::\"leaky\", action == WhisperCMS::Action::\"use\", \
         resource == WhisperCMS::Capability::\"outbound.webhook:contact\");\n\
         permit (principal == WhisperCMS::Plugin::\"leaky\", action == WhisperCMS::Action::\"use\", \
         resource == WhisperCMS::Capability::\"outbound.http:news\");\n",
    )
    .unwrap();
    std::fs::create_dir_all(clone.join("plugins/leaky")).unwrap();
    std::fs::write(
        clone.join("plugins/leaky/plugin.toml"),
        "name = \"leaky\"\nversion = \"0.1.0\"\ncapabilities = [\"http.route\", \"outbound.webhook:contact\", \"outbound.http:news\"]\n\
         [[route]]\npath = \"/leak\"\nhandler = \"leak\"\n",
    )
    .unwrap();
    std::fs::write(
        clone.join("plugins/leaky/main.rhai"),
        "fn leak(request) {\n\
           let err = \"\";\n\
           let sent = webhook(\"contact\", #{ probe: \"from leaky\" });\n\
           let called = http_send(\"news\", #{ email: \"reader@example.net\" });\n\
           try { http_send(\"other\", #{}); } catch (e) { err += `${e}`; }\n\
           try { webhook(\"nope\", #{}); } catch (e) { err += `${e}`; }\n\
           try { webhook(\"contact\", 1 / 0); } catch (e) { err += `${e}`; }\n\
           log(`sent=${sent} err=${err} settings=${settings()}`);\n\
           #{ json: #{ sent: sent, called: called, err: err, settings: settings(), request: request } }\n\
         }\n",
    )
    .unwrap();
    server.git_ok(&clone, &["add", "-A"]);
    server.git_ok(&clone, &["commit", "-qm", "webhook secrets and a curious plugin"]);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert_success(&out, &["push secrets"]);

    let (status, _, reply) = http_get(http, "/leak");
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"sent\":true"), "{reply}");
    let Ok(request) = delivered.recv_timeout(std::time::Duration::from_secs(20)) else {
        panic!("the webhook was not delivered; the log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    assert!(request.starts_with(&format!("POST /hook/{TOKEN}-in-path HTTP/1.1")), "{request}");
    assert!(request.to_ascii_lowercase().contains(&format!("authorization: bearer {}", TOKEN.to_ascii_lowercase())));
    assert!(request.contains("from leaky"), "{request}");
    assert!(reply.contains("\"called\":true") && reply.contains("may not use outbound.http:other"), "{reply}");
    let Ok(call) = api_got.recv_timeout(std::time::Duration::from_secs(20)) else {
        panic!("the endpoint was not called; the log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    assert!(call.starts_with("PUT /v1/subscribers HTTP/1.1"), "{call}");
    assert!(call.to_ascii_lowercase().contains(&format!("x-api-key: {}", API_KEY.to_ascii_lowercase())), "{call}");
    assert!(call.contains("reader@example.net"), "{call}");
    let pages: Vec<String> =
        ["/", "/blog/hello-world/", "/contact/", "/leak?x=1"].iter().map(|p| http_get(http, p).2).collect();
    std::thread::sleep(std::time::Duration::from_millis(300)); // let the log writer catch up
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("sent=true"), "the plugin's log line is there");
    for (what, text) in [("route reply", &reply), ("log", &logged)].into_iter().chain(pages.iter().map(|p| ("page", p)))
    {
        assert!(!text.contains(TOKEN), "the token leaked into a {what}: {text}");
        assert!(!text.contains(API_KEY), "the API key leaked into a {what}: {text}");
        assert!(!text.contains(&format!("127.0.0.1:{api_port}")), "the endpoint leaked into a {what}");
        assert!(!text.contains(&format!("127.0.0.1:{port}")), "the URL leaked into a {what}");
    }

    // Refused at push, with the file: plain text, another recipient, a changed value.
    let stranger = tmp.path().join("stranger.key");
    std::fs::write(&stranger, secrets::Identity::generate().file_text()).unwrap();
    let elsewhere = tmp.path().join("elsewhere/secrets/x.yaml");
    assert_success(&secrets_cli(&["set", elsewhere.to_str().unwrap(), "a"], &stranger, "b"), &["stranger's file"]);
    let tampered = std::fs::read_to_string(&file).unwrap();
    let at = tampered.find("token: ENC[AES256_GCM,data:").unwrap() + "token: ENC[AES256_GCM,data:".len();
    let flipped = if &tampered[at..at + 1] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &tampered[..at], &tampered[at + 1..]);
    for (path, content, expect) in [
        ("secrets/plain.yaml", "password: hunter2-hunter2\n".to_string(), "not encrypted"),
        ("secrets/other.yaml", std::fs::read_to_string(&elsewhere).unwrap(), "not encrypted to this server"),
        ("secrets/webhooks.yaml", tampered, "does not decrypt"),
    ] {
        let before = server.server_refs();
        std::fs::write(clone.join(path), &content).unwrap();
        server.git_ok(&clone, &["add", "-A"]);
        server.git_ok(&clone, &["commit", "-qm", path]);
        let out = server.git_out(&clone, &["push", "origin", "main"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{path} was accepted: {err}");
        assert!(err.contains(&format!("remote:   {path}")) && err.contains(expect), "{path}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert_eq!(server.server_refs(), before, "nothing stored");
        server.git_ok(&clone, &["reset", "-q", "--hard", "HEAD~1"]);
    }
    server.assert_repository_sound();
}

/// A minimal SMTP server on 127.0.0.1 for one message: what it was told (AUTH and DATA).
fn smtp_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        let mut seen = String::new();
        let _ = out.write_all(b"220 test ESMTP\r\n");
        let mut line = String::new();
        let mut in_data = false;
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            seen.push_str(&line);
            let reply: &[u8] = if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    b"250 queued\r\n"
                } else {
                    b""
                }
            } else {
                let upper = line.to_ascii_uppercase();
                if upper.starts_with("EHLO") {
                    b"250-test\r\n250 AUTH PLAIN LOGIN\r\n"
                } else if upper.starts_with("AUTH") {
                    b"235 ok\r\n"
                } else if upper.starts_with("DATA") {
                    in_data = true;
                    b"354 go on\r\n"
                } else if upper.starts_with("QUIT") {
                    let _ = out.write_all(b"221 bye\r\n");
                    break;
                } else {
                    b"250 ok\r\n"
                }
            };
            let _ = out.write_all(reply);
            line.clear();
        }
        let _ = tx.send(seen);
    });
    (port, rx)
}

#[test]
fn a_plugin_sends_mail_through_the_sites_smtp_secrets_without_seeing_them() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("server.log");
    let server = Server::binary_logging_to(&log);
    let http = server.http_port.unwrap();
    let identity = server.data_dir.join("keys/age.key");
    let recipient = String::from_utf8(secrets_cli(&["recipient"], &identity, "").stdout).unwrap().trim().to_string();
    let (port, told) = smtp_server();
    let clone = server.clone(tmp.path(), "site", &[]);
    let file = clone.join("secrets/mail.yaml");
    let file_arg = file.to_str().unwrap();
    let password = "pw-Hx9s2kQm7Lr4";
    for (key, value) in [
        ("smtp", format!("smtp://127.0.0.1:{port}")),
        ("username", "site-mailer".to_string()),
        ("password", password.to_string()),
        ("from", "Site <site@example.org>".to_string()),
        ("to", "owner@example.org".to_string()),
    ] {
        let out = secrets_cli(&["set", file_arg, key, "--recipient", &recipient], &identity, &value);
        assert_success(&out, &["set", key]);
    }
    let config = std::fs::read_to_string(clone.join("site.toml")).unwrap();
    std::fs::write(clone.join("site.toml"), config.replace("plugins = [", "plugins = [\"mailer\", ")).unwrap();
    std::fs::write(
        clone.join("policies/mailer.cedar"),
        "permit (principal == WhisperCMS::Plugin::\"mailer\", action == WhisperCMS::Action::\"use\", \
         resource == WhisperCMS::Capability::\"mail.send\");\n",
    )
    .unwrap();
    std::fs::create_dir_all(clone.join("plugins/mailer")).unwrap();
    std::fs::write(
        clone.join("plugins/mailer/plugin.toml"),
        "name = \"mailer\"\nversion = \"0.1.0\"\ncapabilities = [\"http.route\", \"mail.send\"]\n\
         [[route]]\npath = \"/mail\"\nhandler = \"mail\"\n",
    )
    .unwrap();
    std::fs::write(
        clone.join("plugins/mailer/main.rhai"),
        "fn mail(request) {\n\
           let err = \"\";\n\
           try { mail_send(#{ subject: \"x\", text: \"y\", to: \"attacker@evil.example\" }); } catch (e) { err += `${e}`; }\n\
           let sent = mail_send(#{ subject: \"Hello from the site\", text: \"A visitor wrote.\", reply_to: \"visitor@example.net\" });\n\
           #{ json: #{ sent: sent, err: err } }\n\
         }\n",
    )
    .unwrap();
    server.git_ok(&clone, &["add", "-A"]);
    server.git_ok(&clone, &["commit", "-qm", "mail"]);
    assert_success(&server.git_out(&clone, &["push", "origin", "main"]), &["push mail"]);

    let (status, _, reply) = http_get(http, "/mail");
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"sent\":true") && reply.contains("not one of the site's mail recipients"), "{reply}");
    let Ok(conversation) = told.recv_timeout(std::time::Duration::from_secs(30)) else {
        panic!("no mail arrived; the log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    assert!(conversation.contains("RCPT TO:<owner@example.org>"), "{conversation}");
    assert!(conversation.contains("Subject: Hello from the site") && conversation.contains("A visitor wrote."));
    assert!(conversation.contains("Reply-To: visitor@example.net"), "{conversation}");
    let plain = base64_plain("site-mailer", password);
    assert!(conversation.contains(&format!("AUTH PLAIN {plain}")), "the credentials were used: {conversation}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logged = std::fs::read_to_string(&log).unwrap();
    for (what, text) in [("reply", &reply), ("log", &logged)] {
        assert!(!text.contains(password) && !text.contains(&format!("127.0.0.1:{port}")), "leaked into the {what}");
    }
    // A mail document of the wrong shape is refused at push, with the file.
    let out = secrets_cli(&["set", file_arg, "port", "--recipient", &recipient], &identity, "25");
    assert_success(&out, &["set port"]);
    server.git_ok(&clone, &["commit", "-qam", "a key mail does not know"]);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert!(
        !out.status.success() && stderr(&out).contains("remote:   secrets/mail.yaml: secrets/mail: unknown key port"),
        "{}",
        stderr(&out)
    );
    server.assert_repository_sound();
}

/// AUTH PLAIN's initial response for `user` and `password`.
fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}
