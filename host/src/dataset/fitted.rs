//! Synthetic prompts sized by a counter that need not be additive: the server's own
//! `/tokenize` (chat template and BOS included) or a model's `tokenizer.json`.
//!
//! [`super::synthetic`] builds exact prompts from tiktoken token ids, relying on how tiktoken
//! splits text; a model's tokenizer gives no such guarantee and a server only answers counts.
//! So here a prompt is searched for: the same public-domain text, read as whole words from a
//! seeded start after the shared prefix and the per-request nonce, is lengthened word by word
//! until the counter's total reaches the target, and the last word is cut character by
//! character when a whole word overshoots. The count is monotone in the number of words for
//! tokenizers that split on whitespace first (every BPE and SentencePiece model in use), so
//! the search finds the longest fitting run of words in a few counts per prompt
//! (interpolation, then bisection); the result depends only on the seed and the counter, not on
//! the order in which prompts are counted. A start whose words cannot be cut to the exact count
//! moves to the next word, as the exact generator does.

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::synthetic::{Lengths, PREFIX_STREAM, SOURCE_TEXT, Sampled, Sampler, nonce};
use super::{ChatMessage, DatasetError, Endpoint, PromptItem, PromptText, sampling};
use crate::tokenize::{CountError, PromptCounter};

/// Start words tried per prompt before giving up.
const MAX_STARTS: usize = 8;
/// Counts one start may spend: bounds a counter that is not monotone.
const MAX_COUNTS_PER_START: usize = 64;
/// Prompts sized (or recounted) at once: requests in flight to a server's tokenizer.
pub(super) const IN_FLIGHT: usize = 8;
/// First guess of tokens per word of English prose (refined per prompt by what is counted).
const TOKENS_PER_WORD: f64 = 1.3;

fn count_error(target: usize, e: CountError) -> DatasetError {
    DatasetError::SyntheticLength {
        target,
        reason: e.to_string(),
    }
}

struct Fitter<'a> {
    counter: &'a PromptCounter,
    endpoint: Endpoint,
    words: Vec<&'static str>,
}

impl Fitter<'_> {
    fn wrap(&self, text: String) -> PromptText {
        match self.endpoint {
            Endpoint::Completions => PromptText::Text(text),
            Endpoint::Chat => PromptText::Chat(vec![ChatMessage::user(text)]),
        }
    }

    /// `head`, then `k` words from `start` (cyclic), then `tail` (a cut word).
    fn text(&self, head: &str, start: usize, k: usize, tail: &str) -> String {
        let mut text = head.to_owned();
        let words = (0..k).map(|i| self.words[(start + i) % self.words.len()]);
        for word in words.chain((!tail.is_empty()).then_some(tail)) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(word);
        }
        text
    }

    async fn count(
        &self,
        text: String,
        target: usize,
    ) -> Result<(usize, PromptText), DatasetError> {
        let prompt = self.wrap(text);
        let n = self
            .counter
            .count(&prompt)
            .await
            .map_err(|e| count_error(target, e))?;
        Ok((n as usize, prompt))
    }

    /// A prompt the counter counts as exactly `target`, starting with `head`, whose own count
    /// is `head_count`; `None` when this start cannot be cut to it.
    async fn fit_from(
        &self,
        head: &str,
        head_count: usize,
        start: usize,
        target: usize,
    ) -> Result<Option<PromptText>, DatasetError> {
        // Largest k with count(k) <= target: lo always fits, hi (once found) does not.
        let (mut lo, mut lo_count) = (0usize, head_count);
        let mut hi: Option<usize> = None;
        let mut per_word = TOKENS_PER_WORD;
        for _ in 0..MAX_COUNTS_PER_START {
            if lo_count == target || hi.is_some_and(|h| h <= lo + 1) {
                break;
            }
            let step = ((target - lo_count) as f64 / per_word).ceil().max(1.0) as usize;
            let k = match hi {
                None => lo + step,
                // Interpolate, but stay strictly inside the bracket.
                Some(h) => (lo + step).clamp(lo + 1, h - 1),
            };
            let (n, _) = self.count(self.text(head, start, k, ""), target).await?;
            if n > head_count {
                per_word = ((n - head_count) as f64 / k as f64).max(0.1);
            }
            if n <= target {
                (lo, lo_count) = (k, n);
            } else {
                hi = Some(k);
            }
        }
        let base = self.text(head, start, lo, "");
        if lo_count == target {
            return Ok(Some(self.wrap(base)));
        }
        // Cut the next word: the shortest prefix of it that reaches the target, if exact.
        let word = self.words[(start + lo) % self.words.len()];
        let cuts: Vec<usize> = word
            .char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .filter(|&end| end < word.len())
            .collect();
        let (mut a, mut b) = (0usize, cuts.len());
        while a < b {
            let mid = (a + b) / 2;
            let (n, _) = self
                .count(self.text(&base, 0, 0, &word[..cuts[mid]]), target)
                .await?;
            if n < target { a = mid + 1 } else { b = mid }
        }
        if let Some(&end) = cuts.get(a) {
            let (n, prompt) = self
                .count(self.text(&base, 0, 0, &word[..end]), target)
                .await?;
            if n == target {
                return Ok(Some(prompt));
            }
        }
        Ok(None)
    }

    /// A prompt of exactly `target` after `head`, from a seeded start word.
    async fn fit(
        &self,
        head: &str,
        target: usize,
        first: usize,
    ) -> Result<Option<PromptText>, DatasetError> {
        let (head_count, prompt) = self.count(head.to_owned(), target).await?;
        if head_count > target {
            return Ok(None);
        }
        if head_count == target {
            return Ok(Some(prompt));
        }
        for attempt in 0..MAX_STARTS {
            let start = (first + attempt) % self.words.len();
            if let Some(p) = self.fit_from(head, head_count, start, target).await? {
                return Ok(Some(p));
            }
        }
        Err(DatasetError::SyntheticLength {
            target,
            reason: format!(
                "{} counts no cut of {MAX_STARTS} start words as exactly that",
                self.counter.name()
            ),
        })
    }
}

fn text_of(p: PromptText) -> String {
    match p {
        PromptText::Text(t) => t,
        PromptText::Chat(mut ms) => ms.pop().map(|m| m.content).unwrap_or_default(),
    }
}

pub(super) async fn generate(
    lengths: &Lengths,
    counter: &PromptCounter,
    endpoint: Endpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<PromptItem>, DatasetError> {
    let sampler = Sampler::new(lengths)?;
    let fitter = Fitter {
        counter,
        endpoint,
        words: SOURCE_TEXT.split_whitespace().collect(),
    };
    let prefix_len = sampler.prefix_len;
    // What an empty prompt costs (BOS, the chat template): the shared prefix is `prefix_len`
    // tokens on top of it.
    let (empty, _) = fitter.count(String::new(), prefix_len).await?;
    let prefix = if prefix_len == 0 {
        String::new()
    } else {
        let mut rng = StdRng::seed_from_u64(sampling::key(seed, PREFIX_STREAM));
        let first = rng.random_range(0..fitter.words.len());
        let fitted = fitter.fit("", empty + prefix_len, first).await?;
        text_of(fitted.ok_or_else(|| DatasetError::SyntheticLength {
            target: prefix_len,
            reason: "no prefix text fits".to_owned(),
        })?)
    };

    let (fitter, prefix, sampler) = (&fitter, &prefix, &sampler);
    let items = futures::stream::iter(0..count)
        .map(|index| async move {
            let Sampled {
                mut rng,
                total: target,
                input_tokens,
                max_tokens,
            } = sampler.sample(seed, index)?;
            let first = rng.random_range(0..fitter.words.len());
            let nonce = nonce(seed, index);
            let with_nonce = if prefix.is_empty() {
                nonce
            } else {
                format!("{prefix} {nonce}")
            };
            // A target too short for the nonce goes without it, as in the exact generator.
            for head in [with_nonce.as_str(), prefix.as_str()] {
                if let Some(prompt) = fitter.fit(head, target, first).await? {
                    return Ok(PromptItem {
                        prompt,
                        input_tokens,
                        max_tokens,
                    });
                }
            }
            Err(DatasetError::SyntheticLength {
                target,
                reason: format!(
                    "{} counts {} tokens for an empty prompt with the shared prefix{}; \
                     ask for more input tokens",
                    counter.name(),
                    empty + prefix_len,
                    if counter.counts_template() {
                        " (BOS and chat template included)"
                    } else {
                        ""
                    }
                ),
            })
        })
        .buffered(IN_FLIGHT)
        .collect::<Vec<Result<PromptItem, DatasetError>>>()
        .await;
    items.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Tokenizer;

    fn whitespace_counter() -> PromptCounter {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tokenizers/whitespace"
        );
        PromptCounter::Local(Tokenizer::from_path(std::path::Path::new(dir)).expect("loads"))
    }

    fn lengths(input_len: u32, range_ratio: f64, prefix_len: u32) -> Lengths {
        Lengths {
            input_len,
            output_len: 8,
            range_ratio,
            prefix_len,
        }
    }

    async fn build(l: &Lengths, endpoint: Endpoint, count: usize, seed: u64) -> Vec<PromptItem> {
        generate(l, &whitespace_counter(), endpoint, count, seed)
            .await
            .expect("builds")
    }

    #[tokio::test]
    async fn every_prompt_counts_exactly_its_length() {
        let counter = whitespace_counter();
        for endpoint in [Endpoint::Completions, Endpoint::Chat] {
            let items = build(&lengths(60, 0.5, 10), endpoint, 40, 3).await;
            assert_eq!(items.len(), 40);
            for item in &items {
                let n = counter.count(&item.prompt).await.expect("counts");
                assert_eq!(n, item.input_tokens, "{endpoint:?}");
                assert!((40..=100).contains(&n), "{n}");
            }
        }
    }

    #[tokio::test]
    async fn seeded_repeatable_and_unique() {
        let l = lengths(20, 0.0, 0);
        let a = build(&l, Endpoint::Completions, 30, 7).await;
        let b = build(&l, Endpoint::Completions, 30, 7).await;
        let c = build(&l, Endpoint::Completions, 30, 8).await;
        assert_eq!(a, b);
        let openings: std::collections::HashSet<String> = a
            .iter()
            .chain(&c)
            .map(|i| match &i.prompt {
                PromptText::Text(t) => t.split_whitespace().next().unwrap_or("").to_owned(),
                PromptText::Chat(_) => unreachable!("completions"),
            })
            .collect();
        assert_eq!(openings.len(), 60, "two prompts share an opening");
    }

    #[tokio::test]
    async fn one_token_prompts_are_the_nonce_alone() {
        let items = build(&lengths(1, 0.0, 0), Endpoint::Completions, 5, 1).await;
        let texts: std::collections::HashSet<String> = items
            .iter()
            .map(|i| match &i.prompt {
                PromptText::Text(t) => t.clone(),
                PromptText::Chat(_) => unreachable!("completions"),
            })
            .collect();
        assert!(items.iter().all(|i| i.input_tokens == 1));
        assert_eq!(texts.len(), 5, "{texts:?}");
        assert!(
            texts.iter().all(|t| t.starts_with('r') && t.len() == 9),
            "{texts:?}"
        );
    }
}
