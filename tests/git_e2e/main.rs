//! End-to-end tests of the embedded Git host: the real `git` and `ssh` clients against the real
//! `whispercms-server` binary (or an in-process host where a test needs custom hooks or limits)
//! on 127.0.0.1. Every scenario ends with `git fsck --strict` on the server's repository.

mod backup;
mod clone_fetch;
mod clone_memory;
mod edge;
mod extensions;
mod faults;
mod follow;
mod generators;
mod governance;
mod hostile;
/// The smart-HTTP reference server of the client's tests (`git http-backend` behind HTTPS).
#[path = "../../githost/tests/client/http_backend.rs"]
#[allow(dead_code)]
mod http_backend;
mod init;
mod maintenance;
mod push;
mod secrets;
mod site;
mod ssh;
mod support;
mod upgrade;
