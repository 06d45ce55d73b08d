//! The content model: front matter, Markdown, and documents (pages and sections) with URLs.

pub mod document;
pub mod front_matter;
pub mod markdown;

pub use document::{is_document, Document, Kind};
