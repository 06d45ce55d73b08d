//! The site runtime of WhisperCMS: from any commit of a site repository, an SQLite index of its
//! content and the public site rendered through the active theme, straight from Git objects.
//!
//! Pipeline, as the modules are named: [`config`] (`site.toml`) → [`content`] (front matter,
//! Markdown, documents) → [`source`] (reading and diffing Git trees) → [`index`] (SQLite, full and
//! incremental; [`urls`] says which document owns which URL) → [`theme`] (minijinja) → [`render`] and [`feeds`] → [`http`] (Axum), with
//! [`site`] publishing commits as immutable [`snapshot`]s swapped atomically.
//!
//! This crate knows nothing of SSH or the pack protocol.

mod carry;
pub mod config;
pub mod content;
mod error;
pub mod extensions;
pub mod feeds;
pub mod http;
pub mod images;
pub mod index;
pub mod plugin_routes;
pub mod render;
pub mod site;
pub mod snapshot;
pub mod source;
pub mod starter;
pub mod theme;
pub mod urls;

/// Unit tests count script allocations like the server does.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: extensions::memory::CountingAllocator = extensions::memory::CountingAllocator(std::alloc::System);

pub use config::SiteConfig;
pub use error::{Error, Result};
pub use site::{Published, Site};
