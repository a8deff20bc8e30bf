//! The benches' own flags (`cargo bench --bench NAME -- --flag N`): cargo's harness flags
//! pass through untouched, so each bench reads only the names it knows.

/// The number after `name` on the command line, or `default`.
pub fn number(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
