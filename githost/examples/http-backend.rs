//! The smart-HTTP reference server of the client's tests (`git http-backend` as CGI behind
//! HTTPS with a token), as a program for benchmarks:
//!
//! ```sh
//! http-backend ROOT TOKEN   # serves ROOT/*.git; prints "port N" and "ca FILE", runs until killed
//! ```

#[path = "../tests/client/http_backend.rs"]
#[allow(dead_code)]
mod http_backend;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, token] = args.as_slice() else {
        eprintln!("usage: http-backend ROOT TOKEN");
        std::process::exit(2)
    };
    let backend = http_backend::HttpBackend::start(std::path::Path::new(root), token);
    println!("port {}", backend.port);
    println!("ca {}", backend.ca.display());
    loop {
        std::thread::park();
    }
}
