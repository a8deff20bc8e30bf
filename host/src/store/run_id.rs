//! Run IDs: short, readable and sortable — `YYMMDD-HHMMSS-xxxx` (UTC start
//! time, then four random base-32 characters so runs started in the same
//! second on different machines or processes do not collide).
use rand::Rng;

/// Lower-case letters and digits without the look-alikes i, l, o and 0/1.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A new ID for a run starting now.
pub fn new_run_id() -> String {
    id_at(std::time::SystemTime::now(), &mut rand::rng())
}

fn id_at(t: std::time::SystemTime, rng: &mut impl Rng) -> String {
    // "2025-03-14T10:15:02Z" → "250314-101502"
    let stamp = humantime::format_rfc3339_seconds(t).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let compact = format!(
        "{}-{}",
        digits.get(2..8).unwrap_or("000000"),
        digits.get(8..14).unwrap_or("000000")
    );
    let suffix: String = (0..4)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{compact}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn ids_are_readable_and_sort_by_time() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        // 2025-03-14T10:15:02Z
        let t = UNIX_EPOCH + Duration::from_secs(1_741_947_302);
        let a = id_at(t, &mut rng);
        assert!(a.starts_with("250314-101502-"), "{a}");
        assert_eq!(a.len(), 18);
        let b = id_at(t + Duration::from_secs(1), &mut rng);
        let c = id_at(t + Duration::from_secs(86_400 * 40), &mut rng);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(a[14..].bytes().all(|ch| ALPHABET.contains(&ch)));
    }
}
