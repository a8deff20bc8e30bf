//! Live progress in the terminal: a bar per level on a TTY, plain lines
//! otherwise (CI logs stay readable).
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::broadcast;

use crate::engine::{ProgressEvent, Snapshot};

fn line(s: &Snapshot) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    format!(
        "ok {} fail {} in-flight {} | out {:.0} tok/s | TTFT p50 {} p99 {} ms | ITL p99 {} ms",
        s.completed,
        s.failed,
        s.in_flight,
        s.output_tokens as f64 / s.elapsed_s.max(1e-9),
        ms(s.ttft_p50_ms),
        ms(s.ttft_p99_ms),
        ms(s.itl_p99_ms)
    )
}

/// Consume progress events until the engine drops its sender.
pub async fn render(mut rx: broadcast::Receiver<ProgressEvent>, bar: bool) {
    let mut current: Option<ProgressBar> = None;
    let mut last_plain = std::time::Instant::now();
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        };
        match ev {
            ProgressEvent::LevelStarted {
                level,
                index,
                of,
                planned,
            } => {
                if bar {
                    let pb = match planned {
                        Some(n) => ProgressBar::new(n),
                        None => ProgressBar::new_spinner(),
                    };
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>10} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    pb.set_prefix(level.clone());
                    current = Some(pb);
                } else {
                    eprintln!("level {}/{of}: {level}", index + 1);
                }
            }
            ProgressEvent::Tick(s) => {
                if let Some(pb) = &current {
                    pb.set_position(s.completed + s.failed);
                    pb.set_message(line(&s));
                } else if last_plain.elapsed().as_secs() >= 5 {
                    last_plain = std::time::Instant::now();
                    eprintln!("  {}: {}", s.level, line(&s));
                }
            }
            ProgressEvent::LevelFinished(s) => {
                if let Some(pb) = current.take() {
                    pb.finish_with_message(line(&s));
                } else {
                    eprintln!("  {} done: {}", s.level, line(&s));
                }
            }
        }
    }
}
