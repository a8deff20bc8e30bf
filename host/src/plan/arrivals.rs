//! Open-loop arrival schedules: gamma-distributed gaps (shape = burstiness; 1 is Poisson),
//! computed ahead from a seed as absolute offsets, so a late dispatch never shifts the requests
//! after it and every shard draws the same schedule.
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, Gamma};

/// Gamma-distributed arrival offsets (seconds from the level's start).
/// The whole schedule is computed ahead, as absolute times, so a late
/// dispatch never shifts the requests after it.
pub fn arrival_offsets(rate: f64, burstiness: f64, count: usize, seed: u64) -> Vec<f64> {
    if rate.is_infinite() || count == 0 {
        return vec![0.0; count];
    }
    arrival_offsets_iter(rate, burstiness, seed)
        .take(count)
        .collect()
}

/// The same offsets, without end (a finite positive rate).
pub fn arrival_offsets_iter(rate: f64, burstiness: f64, seed: u64) -> impl Iterator<Item = f64> {
    let gamma = Gamma::new(burstiness, 1.0 / (rate * burstiness))
        .expect("rate and burstiness are validated to be positive and finite");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = 0.0;
    std::iter::repeat_with(move || {
        t += gamma.sample(&mut rng);
        t
    })
}

/// Arrival offsets up to `horizon` seconds (a finite positive rate): a prefix of the one long
/// schedule the seed draws, whatever the horizon.
pub fn arrivals_within(rate: f64, burstiness: f64, horizon: f64, seed: u64) -> Vec<f64> {
    arrival_offsets_iter(rate, burstiness, seed)
        .take_while(|&t| t <= horizon)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_and_rate_statistics() {
        let a = arrival_offsets(20.0, 1.0, 20_000, 7);
        let b = arrival_offsets(20.0, 1.0, 20_000, 7);
        assert_eq!(a, b);
        assert_ne!(a, arrival_offsets(20.0, 1.0, 20_000, 8));
        let gaps: Vec<f64> = std::iter::once(a[0])
            .chain(a.windows(2).map(|w| w[1] - w[0]))
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        // Poisson: mean gap 1/rate, coefficient of variation 1. With 20,000
        // gaps the standard error of each is under 1 %: 5 % cannot flake.
        assert!(
            (1.0 / mean - 20.0).abs() / 20.0 < 0.05,
            "rate {}",
            1.0 / mean
        );
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        // Gamma shape B gives CV 1/sqrt(B).
        let c = arrival_offsets(20.0, 4.0, 20_000, 7);
        let gaps: Vec<f64> = c.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 0.5).abs() < 0.05, "cv {}", sd / mean);
    }

    #[test]
    fn horizon_schedules_are_prefixes_of_the_long_one() {
        let long = arrival_offsets(5.0, 1.0, 1000, 3);
        let short = arrivals_within(5.0, 1.0, 10.0, 3);
        assert_eq!(&long[..short.len()], &short[..]);
        assert!(short.iter().all(|&t| t <= 10.0));
        assert!(long[short.len()] > 10.0);
    }

    #[test]
    fn infinite_rate_sends_at_once() {
        assert_eq!(arrival_offsets(f64::INFINITY, 1.0, 3, 0), vec![0.0; 3]);
    }
}
