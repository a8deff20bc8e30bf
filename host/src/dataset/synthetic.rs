//! Synthetic prompts whose client-side token count is exact.
//!
//! Every prompt opens (after the `--prefix-len` prefix, which is meant to be shared) with a
//! short nonce drawn from the seed and the request's index, so no two requests of a run, and
//! no two runs with different seeds, share a prefix a server could serve from its prompt
//! cache: TTFT is measured cold, as a user's distinct prompts see it. A prompt too short to
//! hold the nonce and a word goes without it.
//!
//! Text comes from a bundled public-domain passage (chapters I–III of Lewis
//! Carroll's *Alice's Adventures in Wonderland*, 1865; see host/assets/README.md)
//! read as an endless loop, so any length can be cut from it. Each prompt
//! starts at a seeded word.
//!
//! Exactness without re-encoding whole prompts rests on how tiktoken splits
//! text before BPE: its split patterns (cl100k_base and o200k_base alike) never
//! let a piece run from non-space text across a " " that is followed by a
//! letter, and never look behind. So for A not ending in whitespace and B
//! starting with a space and a letter, `count(A + B) == count(A) + count(B)`.
//! A run of corpus tokens from one word start to another therefore re-encodes
//! to itself, and only the short pieces at the ends (the first word, whose
//! leading space is dropped, and a partial last word) are encoded to be
//! measured; a partial word is cut at the token count that measures right. The tests check the final count of every prompt they build.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{ChatMessage, DatasetError, Endpoint, PromptItem, PromptText, sampling};
use crate::tokenize::Tokenizer;

pub(super) const SOURCE_TEXT: &str = include_str!("../../assets/alice-chapters-1-3.txt");

/// Start words tried per prompt before giving up (in practice the first fits).
const MAX_STARTS: usize = 64;
/// Seed stream for the shared prefix, apart from every item's stream.
pub(super) const PREFIX_STREAM: u64 = u64::MAX;
/// Seed stream for the per-request nonces.
const NONCE_STREAM: u64 = u64::MAX - 1;

/// The nonce of request `index`: a letter, then 8 hex digits (4–6 tokens). It starts with a
/// letter and ends in no whitespace, so it joins the prefix before it and the corpus after it
/// at word boundaries, where token counts add up.
pub(super) fn nonce(seed: u64, index: usize) -> String {
    let k = sampling::key(sampling::key(seed, NONCE_STREAM), index as u64);
    format!("r{:08x}", k >> 32)
}

pub(super) struct Lengths {
    pub input_len: u32,
    pub output_len: u32,
    pub range_ratio: f64,
    pub prefix_len: u32,
}

pub(super) fn generate(
    lengths: &Lengths,
    tokenizer: &Tokenizer,
    endpoint: Endpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<PromptItem>, DatasetError> {
    let sampler = Sampler::new(lengths)?;
    let corpus = Corpus::new(tokenizer)?;
    let prefix_len = sampler.prefix_len;

    let prefix = if prefix_len == 0 {
        String::new()
    } else {
        let mut rng = StdRng::seed_from_u64(sampling::key(seed, PREFIX_STREAM));
        corpus.exact_text(tokenizer, ("", 0), prefix_len, &mut rng)?
    };

    // Each item has its own seeded stream, so item i does not depend on count.
    (0..count)
        .map(|index| {
            let Sampled {
                mut rng,
                total,
                input_tokens,
                max_tokens,
            } = sampler.sample(seed, index)?;
            let head = with_nonce(tokenizer, (&prefix, prefix_len), total, seed, index);
            let text = corpus.exact_text(tokenizer, (&head.0, head.1), total, &mut rng)?;
            Ok(PromptItem {
                prompt: match endpoint {
                    Endpoint::Completions => PromptText::Text(text),
                    Endpoint::Chat => PromptText::Chat(vec![ChatMessage::user(text)]),
                },
                input_tokens,
                max_tokens,
            })
        })
        .collect()
}

/// Request `index`'s lengths, drawn from its own seeded stream (so item i does not depend on
/// count); the stream goes on to choose where its text starts.
pub(super) struct Sampled {
    pub rng: StdRng,
    /// Prefix plus sampled input length, in tokens.
    pub total: usize,
    pub input_tokens: u32,
    pub max_tokens: u32,
}

/// The checked length ranges of a synthetic dataset, shared by both generators.
pub(super) struct Sampler {
    input_range: (u32, u32),
    output_range: (u32, u32),
    pub prefix_len: usize,
}

impl Sampler {
    pub(super) fn new(lengths: &Lengths) -> Result<Sampler, DatasetError> {
        Ok(Sampler {
            input_range: length_range("input_len", lengths.input_len, lengths.range_ratio)?,
            output_range: length_range("output_len", lengths.output_len, lengths.range_ratio)?,
            prefix_len: lengths.prefix_len as usize,
        })
    }

    pub(super) fn sample(&self, seed: u64, index: usize) -> Result<Sampled, DatasetError> {
        let mut rng = StdRng::seed_from_u64(sampling::key(seed, index as u64));
        let input_len = rng.random_range(self.input_range.0..=self.input_range.1);
        let max_tokens = rng.random_range(self.output_range.0..=self.output_range.1);
        let total = self.prefix_len + input_len as usize;
        let input_tokens = u32::try_from(total).map_err(|_| {
            DatasetError::InvalidSpec(format!(
                "prefix_len + input length ({total}) does not fit in 32 bits"
            ))
        })?;
        Ok(Sampled {
            rng,
            total,
            input_tokens,
            max_tokens,
        })
    }
}

/// The shared prefix followed by request `index`'s nonce, with its token count; the prefix
/// alone when fewer than two tokens would be left for the corpus after the nonce.
fn with_nonce(
    tokenizer: &Tokenizer,
    (prefix, prefix_len): (&str, usize),
    total: usize,
    seed: u64,
    index: usize,
) -> (String, usize) {
    let nonce = nonce(seed, index);
    let piece = if prefix.is_empty() {
        nonce
    } else {
        format!(" {nonce}")
    };
    let piece_len = tokenizer.count(&piece);
    if prefix_len + piece_len + 2 > total {
        return (prefix.to_owned(), prefix_len);
    }
    (format!("{prefix}{piece}"), prefix_len + piece_len)
}

/// Inclusive bounds `[len·(1−r), len·(1+r)]`, truncated like vLLM's random
/// dataset, and never below one token.
fn length_range(name: &str, len: u32, ratio: f64) -> Result<(u32, u32), DatasetError> {
    if len == 0 {
        return Err(DatasetError::InvalidSpec(format!(
            "{name} must be at least 1"
        )));
    }
    if !(0.0..1.0).contains(&ratio) {
        return Err(DatasetError::InvalidSpec(format!(
            "range_ratio must be in [0, 1), got {ratio}"
        )));
    }
    let low = ((f64::from(len) * (1.0 - ratio)) as u32).max(1);
    let high = ((f64::from(len) * (1.0 + ratio)) as u32).max(low);
    Ok((low, high))
}

/// The source text as tokens, read cyclically. Positions are absolute
/// (`lap * len + index`) so that slices may wrap any number of times.
struct Corpus {
    tokens: Vec<u32>,
    /// Sorted indices of tokens that begin a word (a space then a letter);
    /// the first is 0.
    word_starts: Vec<usize>,
}

impl Corpus {
    fn new(tokenizer: &Tokenizer) -> Result<Corpus, DatasetError> {
        // One space between words, and one before the first, so every word
        // start (the loop's seam included) is a space then a letter, and the
        // source's line breaks and indentation give no whitespace-only tokens.
        let mut text = String::with_capacity(SOURCE_TEXT.len() + 1);
        for word in SOURCE_TEXT.split_whitespace() {
            text.push(' ');
            text.push_str(word);
        }
        let tokens = tokenizer.encode(&text);
        let mut word_starts = Vec::new();
        for (position, &token) in tokens.iter().enumerate() {
            let piece = tokenizer.decode(&[token])?;
            // The additivity argument needs slices never to end in whitespace.
            if piece.ends_with(char::is_whitespace) {
                return Err(corpus_error(format!(
                    "token {position} ({piece:?}) ends in whitespace"
                )));
            }
            let mut chars = piece.chars();
            if chars.next() == Some(' ') && chars.next().is_some_and(char::is_alphabetic) {
                word_starts.push(position);
            }
        }
        if word_starts.first() != Some(&0) {
            return Err(corpus_error(
                "the text does not begin with a word".to_owned(),
            ));
        }
        Ok(Corpus {
            tokens,
            word_starts,
        })
    }

    fn slice(&self, start: usize, len: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(len);
        let mut from = start % self.tokens.len();
        while out.len() < len {
            let take = (len - out.len()).min(self.tokens.len() - from);
            out.extend_from_slice(&self.tokens[from..from + take]);
            from = 0;
        }
        out
    }

    /// The last word start at or before `position`.
    fn word_start_at_or_before(&self, position: usize) -> usize {
        let n = self.tokens.len();
        let (lap, index) = (position / n, position % n);
        // word_starts[0] == 0 <= index, so the partition point is at least 1.
        let at = self.word_starts.partition_point(|&w| w <= index);
        lap * n + self.word_starts[at - 1]
    }

    /// The first word start after `position`.
    fn word_start_after(&self, position: usize) -> usize {
        let n = self.tokens.len();
        let (lap, index) = (position / n, position % n);
        let at = self.word_starts.partition_point(|&w| w <= index);
        match self.word_starts.get(at) {
            Some(&w) => lap * n + w,
            None => (lap + 1) * n,
        }
    }

    /// Text that encodes to exactly `total` tokens: `head` (text not ending in
    /// whitespace, with its token count) followed by corpus text from a seeded
    /// word. With no head the text starts at the word itself; after a head it
    /// keeps the word's leading space, so the seam is a word boundary.
    fn exact_text(
        &self,
        tokenizer: &Tokenizer,
        head: (&str, usize),
        total: usize,
        rng: &mut StdRng,
    ) -> Result<String, DatasetError> {
        let first = rng.random_range(0..self.word_starts.len());
        for attempt in 0..MAX_STARTS {
            let start = self.word_starts[(first + attempt) % self.word_starts.len()];
            if let Some(text) = self.text_from(tokenizer, head, total, start)? {
                return Ok(text);
            }
        }
        Err(DatasetError::SyntheticLength {
            target: total,
            reason: format!("no partial word measured right from {MAX_STARTS} start words"),
        })
    }

    fn text_from(
        &self,
        tokenizer: &Tokenizer,
        (head, head_tokens): (&str, usize),
        total: usize,
        start: usize,
    ) -> Result<Option<String>, DatasetError> {
        let Some(mut need) = total.checked_sub(head_tokens).filter(|&n| n > 0) else {
            return Err(DatasetError::SyntheticLength {
                target: total,
                reason: format!("the shared prefix already has {head_tokens} tokens"),
            });
        };
        let mut text = String::with_capacity(head.len() + need * 6);
        text.push_str(head);
        let mut position = start;
        if head.is_empty() {
            // The first word without its leading space may encode differently
            // from the corpus tokens, so measure it.
            let end = self.word_start_after(position);
            let word = self.slice(position, end - position);
            let decoded = tokenizer.decode(&word)?;
            let trimmed = decoded.trim_start();
            let got = tokenizer.count(trimmed);
            if got >= need {
                return if got == need {
                    Ok(Some(trimmed.to_owned()))
                } else {
                    fit_partial(tokenizer, &word, need, true)
                };
            }
            text.push_str(trimmed);
            need -= got;
            position = end;
        }
        // Whole words: their tokens re-encode to themselves.
        let end = self.word_start_at_or_before(position + need);
        text.push_str(&tokenizer.decode(&self.slice(position, end - position))?);
        let rest = need - (end - position);
        if rest > 0 {
            // Part of the next word, which has more than `rest` tokens.
            let word = self.slice(end, self.word_start_after(end) - end);
            match fit_partial(tokenizer, &word, rest, false)? {
                Some(part) => text.push_str(&part),
                None => return Ok(None),
            }
        }
        Ok(Some(text))
    }
}

/// A prefix of `word`'s tokens whose text (leading space dropped if
/// `trim_start`) encodes to exactly `target` tokens, if one exists. Words are a
/// few tokens long, so every prefix length is tried, nearest guess first.
fn fit_partial(
    tokenizer: &Tokenizer,
    word: &[u32],
    target: usize,
    trim_start: bool,
) -> Result<Option<String>, DatasetError> {
    let guess = target.clamp(1, word.len());
    let mut takes: Vec<usize> = (1..=word.len()).collect();
    takes.sort_by_key(|&take| take.abs_diff(guess));
    for take in takes {
        let decoded = tokenizer.decode(&word[..take])?;
        let text = if trim_start {
            decoded.trim_start()
        } else {
            &decoded
        };
        if tokenizer.count(text) == target {
            return Ok(Some(text.to_owned()));
        }
    }
    Ok(None)
}

fn corpus_error(reason: String) -> DatasetError {
    DatasetError::SyntheticLength {
        target: 0,
        reason: format!("unusable bundled text: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::TokenizerKind;
    use std::collections::HashSet;

    fn tokenizer(kind: TokenizerKind) -> Tokenizer {
        Tokenizer::new(kind).expect("vocabulary loads")
    }

    fn lengths(input_len: u32, output_len: u32, range_ratio: f64, prefix_len: u32) -> Lengths {
        Lengths {
            input_len,
            output_len,
            range_ratio,
            prefix_len,
        }
    }

    fn text(item: &PromptItem) -> &str {
        match &item.prompt {
            PromptText::Text(text) => text,
            PromptText::Chat(messages) => &messages[0].content,
        }
    }

    #[test]
    fn source_text_is_ascii_prose() {
        assert!(SOURCE_TEXT.len() > 30_000);
        assert!(SOURCE_TEXT.is_ascii());
        assert!(SOURCE_TEXT.contains("Alice was beginning to get very tired"));
    }

    #[test]
    fn exact_lengths_for_many_targets() {
        for kind in [TokenizerKind::Cl100kBase, TokenizerKind::O200kBase] {
            let tok = tokenizer(kind);
            let corpus = Corpus::new(&tok).expect("corpus");
            let mut rng = StdRng::seed_from_u64(11);
            let targets = (1..=64).chain([100, 127, 128, 255, 256, 511, 512, 1000, 1024, 2048]);
            for target in targets.chain([4096, 8191, 20_000]) {
                for _ in 0..4 {
                    let text = corpus
                        .exact_text(&tok, ("", 0), target, &mut rng)
                        .expect("fits");
                    assert_eq!(tok.count(&text), target, "{kind} target {target}: {text:?}");
                    assert!(!text.starts_with(' '));
                }
            }
        }
    }

    #[test]
    fn every_start_word_is_exact() {
        for kind in [TokenizerKind::Cl100kBase, TokenizerKind::O200kBase] {
            let tok = tokenizer(kind);
            let corpus = Corpus::new(&tok).expect("corpus");
            let head = "A shared head ending in punctuation!";
            let head_tokens = tok.count(head);
            let (mut built, mut missed) = (0, 0);
            for (i, &start) in corpus.word_starts.iter().enumerate() {
                let target = [1, 2, 3, 5, 8, 13, 40][i % 7];
                for (head, total) in [("", target), (head, head_tokens + target)] {
                    match corpus
                        .text_from(&tok, (head, tok.count(head)), total, start)
                        .expect("no error")
                    {
                        Some(text) => {
                            assert_eq!(tok.count(&text), total, "{kind} at {start}: {text:?}");
                            assert!(text.starts_with(head));
                            built += 1;
                        }
                        // A word such as " beginning" is one token, but
                        // "beginning" at the very start is two: no cut of it
                        // gives one token, and the caller moves to the next word.
                        None => {
                            assert!(head.is_empty() && target <= 2, "{kind} at {start}");
                            missed += 1;
                        }
                    }
                }
            }
            assert!(built > 10_000, "{kind}: only {built} built");
            assert!(missed * 50 < built, "{kind}: {missed} misses for {built}");
        }
    }

    #[test]
    fn word_start_lookup_wraps() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        let corpus = Corpus::new(&tok).expect("corpus");
        let n = corpus.tokens.len();
        let last = *corpus.word_starts.last().expect("words");
        assert_eq!(corpus.word_start_at_or_before(0), 0);
        assert_eq!(corpus.word_start_at_or_before(n - 1), last);
        let second = corpus.word_starts[1];
        assert_eq!(
            corpus.word_start_at_or_before(2 * n + second),
            2 * n + second
        );
        assert_eq!(corpus.word_start_at_or_before(3 * n - 1), 2 * n + last);
        assert_eq!(corpus.word_start_after(last), n);
        assert_eq!(corpus.word_start_after(n), n + corpus.word_starts[1]);
        assert_eq!(
            corpus.slice(n - 1, 3),
            [corpus.tokens[n - 1], corpus.tokens[0], corpus.tokens[1]]
        );
    }

    #[test]
    fn items_match_their_counts_with_ranges() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        let items = generate(
            &lengths(512, 128, 0.1, 0),
            &tok,
            Endpoint::Completions,
            300,
            5,
        )
        .expect("builds");
        assert_eq!(items.len(), 300);
        for item in &items {
            assert_eq!(tok.count(text(item)), item.input_tokens as usize);
            assert!(
                (460..=563).contains(&item.input_tokens),
                "{}",
                item.input_tokens
            );
            assert!(
                (115..=140).contains(&item.max_tokens),
                "{}",
                item.max_tokens
            );
        }
        let distinct: HashSet<u32> = items.iter().map(|i| i.input_tokens).collect();
        assert!(
            distinct.len() > 50,
            "lengths barely vary: {}",
            distinct.len()
        );
        let outputs: HashSet<u32> = items.iter().map(|i| i.max_tokens).collect();
        assert!(outputs.len() > 10);
    }

    #[test]
    fn zero_ratio_gives_fixed_lengths() {
        let tok = tokenizer(TokenizerKind::O200kBase);
        for len in [1, 2, 3, 4096] {
            let items = generate(&lengths(len, 7, 0.0, 0), &tok, Endpoint::Completions, 5, 1)
                .expect("builds");
            for item in &items {
                assert_eq!(item.input_tokens, len);
                assert_eq!(tok.count(text(item)), len as usize);
                assert_eq!(item.max_tokens, 7);
            }
        }
    }

    #[test]
    fn shared_prefix_is_identical_and_counted() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        let items = generate(
            &lengths(64, 16, 0.5, 200),
            &tok,
            Endpoint::Completions,
            40,
            9,
        )
        .expect("builds");
        let prefix = generate(
            &lengths(64, 16, 0.5, 200),
            &tok,
            Endpoint::Completions,
            1,
            9,
        )
        .expect("builds");
        assert_eq!(prefix[0], items[0], "items do not depend on count");
        // The shared prefix is the longest common prefix's leading 200 tokens.
        let first = text(&items[0]);
        let common = items.iter().fold(first.len(), |len, item| {
            first
                .bytes()
                .zip(text(item).bytes())
                .take(len)
                .take_while(|(a, b)| a == b)
                .count()
        });
        assert!(tok.count(&first[..common]) >= 200, "common part too short");
        for item in &items {
            assert!(
                (232..=296).contains(&item.input_tokens),
                "{}",
                item.input_tokens
            );
            assert_eq!(tok.count(text(item)), item.input_tokens as usize);
        }
    }

    #[test]
    fn seeds_repeat_and_differ() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        let spec = lengths(100, 20, 0.2, 0);
        let a = generate(&spec, &tok, Endpoint::Completions, 20, 42).expect("builds");
        let b = generate(&spec, &tok, Endpoint::Completions, 20, 42).expect("builds");
        let c = generate(&spec, &tok, Endpoint::Completions, 20, 43).expect("builds");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let starts: HashSet<&str> = a.iter().map(|i| &text(i)[..20]).collect();
        assert!(starts.len() > 15, "prompts start at the same place");
    }

    #[test]
    fn no_two_prompts_of_one_run_or_two_seeds_share_an_opening() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        for prefix_len in [0, 16] {
            let spec = lengths(64, 8, 0.0, prefix_len);
            let mut openings = HashSet::new();
            for seed in [1, 2] {
                let items =
                    generate(&spec, &tok, Endpoint::Completions, 100, seed).expect("builds");
                for item in &items {
                    let t = text(item);
                    assert_eq!(item.input_tokens, 64 + prefix_len);
                    assert_eq!(tok.count(t) as u32, item.input_tokens, "{t:?}");
                    // The shared prefix, then the nonce: the first place prompts may differ.
                    let is_nonce = |at: usize| {
                        t[at..].starts_with('r')
                            && t[at + 1..].len() >= 8
                            && t[at + 1..at + 9].bytes().all(|b| b.is_ascii_hexdigit())
                    };
                    let prefix_chars = if prefix_len == 0 {
                        0
                    } else {
                        (1..t.len())
                            .find(|&at| t.as_bytes()[at - 1] == b' ' && is_nonce(at))
                            .expect("a nonce after the prefix")
                    };
                    let nonce = &t[prefix_chars..prefix_chars + 9];
                    assert!(nonce.starts_with('r'), "{t:?}");
                    assert!(openings.insert(nonce.to_string()), "nonce {nonce} repeats");
                }
            }
            assert_eq!(openings.len(), 200);
        }
        // Too short for a nonce and a word: the prompt goes without, still exact.
        let items =
            generate(&lengths(2, 8, 0.0, 0), &tok, Endpoint::Completions, 5, 1).expect("builds");
        assert!(items.iter().all(|i| tok.count(text(i)) == 2));
    }

    #[test]
    fn chat_endpoint_wraps_one_user_message() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        let items = generate(&lengths(50, 10, 0.0, 0), &tok, Endpoint::Chat, 3, 2).expect("builds");
        for item in &items {
            let PromptText::Chat(messages) = &item.prompt else {
                panic!("expected chat messages, got {:?}", item.prompt);
            };
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].role, "user");
            assert_eq!(tok.count(&messages[0].content), 50);
        }
    }

    #[test]
    fn rejects_bad_settings() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        for (spec, needle) in [
            (lengths(0, 10, 0.0, 0), "input_len"),
            (lengths(10, 0, 0.0, 0), "output_len"),
            (lengths(10, 10, 1.0, 0), "range_ratio"),
            (lengths(10, 10, -0.1, 0), "range_ratio"),
            (lengths(10, 10, f64::NAN, 0), "range_ratio"),
        ] {
            let err = generate(&spec, &tok, Endpoint::Completions, 1, 0).expect_err("invalid");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn range_bounds() {
        assert_eq!(length_range("x", 512, 0.1).expect("ok"), (460, 563));
        assert_eq!(length_range("x", 1, 0.9).expect("ok"), (1, 1));
        assert_eq!(length_range("x", 10, 0.0).expect("ok"), (10, 10));
    }

    /// Prints build time; run with
    /// `cargo test --release -p llm-loadtest --lib timing_10k -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing figure only; run in release with --ignored --nocapture"]
    fn timing_10k_prompts_of_512() {
        let tok = tokenizer(TokenizerKind::Cl100kBase);
        let spec = lengths(512, 128, 0.0, 0);
        let started = std::time::Instant::now();
        let items = generate(&spec, &tok, Endpoint::Completions, 10_000, 1).expect("builds");
        let elapsed = started.elapsed();
        assert_eq!(items.len(), 10_000);
        println!(
            "synthetic: 10000 prompts x 512 tokens in {:.3} s (one thread)",
            elapsed.as_secs_f64()
        );
    }
}
