//! Views of results: the terminal table, live progress, and (with the store)
//! exported reports.
pub mod progress;
pub mod table;
