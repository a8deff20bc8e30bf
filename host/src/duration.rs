//! Human durations on the command line: `500ms`, `10s`, `2m`, `1.5s`, `250us`.
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DurationError {
    #[error("`{0}` is not a duration (use e.g. 500ms, 10s, 2m)")]
    Invalid(String),
}

/// Parse a duration with a unit: `us`, `ms`, `s`, `m`, `h`. A bare number is seconds.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| DurationError::Invalid(s.to_string()))?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(DurationError::Invalid(s.to_string())),
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(DurationError::Invalid(s.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A clap value parser for durations.
pub fn parse_arg(s: &str) -> Result<Duration, String> {
    parse(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("250us").unwrap(), Duration::from_micros(250));
        assert!(parse("ms").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("-1s").is_err());
    }
}
