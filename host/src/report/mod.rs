//! Views of results: the terminal table, live progress, and (with the store)
//! exported reports.
pub mod capacity;
pub mod charts;
pub mod document;
pub mod html;
pub mod markdown;
pub mod progress;
pub mod readings;
pub mod table;
pub mod timeline;
