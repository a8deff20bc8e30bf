//! Token accounting: the prompt-counting rule and the deterministic output text.
//!
//! Prompt tokens are whitespace-separated words (`str::split_whitespace`), so `"Hello,  world"`
//! is two tokens whatever tokenizer a client uses. Output tokens are words of a fixed list, each
//! with a leading space, one word per token: the reported `completion_tokens` equals the number
//! of words sent, and a client counting the text's words gets the same figure.

/// The output vocabulary. ASCII letters only, so no token ever needs JSON escaping.
const WORDS: [&str; 64] = [
    " the",
    " model",
    " serves",
    " tokens",
    " under",
    " load",
    " with",
    " steady",
    " latency",
    " while",
    " batching",
    " keeps",
    " every",
    " request",
    " moving",
    " through",
    " its",
    " queue",
    " and",
    " memory",
    " stays",
    " small",
    " for",
    " each",
    " stream",
    " that",
    " reads",
    " a",
    " cache",
    " of",
    " keys",
    " values",
    " as",
    " decoding",
    " proceeds",
    " step",
    " by",
    " until",
    " limit",
    " or",
    " end",
    " sequence",
    " arrives",
    " then",
    " next",
    " begins",
    " from",
    " prompt",
    " prefill",
    " which",
    " costs",
    " time",
    " per",
    " input",
    " token",
    " so",
    " long",
    " prompts",
    " wait",
    " longer",
    " before",
    " first",
    " output",
    " appears",
];

/// Tokens the simulated chat template adds per message (a role marker and an end marker), as
/// a real template does (`<|start_header_id|>user<|end_header_id|>` ... `<|eot_id|>`), so a
/// chat prompt's server count exceeds its content's words as on a real server.
pub(crate) const CHAT_TOKENS_PER_MESSAGE: u32 = 2;
/// Tokens of the generation prompt the template ends with (the assistant's role marker).
pub(crate) const CHAT_GENERATION_PROMPT_TOKENS: u32 = 1;

/// Counts the prompt's tokens by the simulator's rule: whitespace-separated words.
pub(crate) fn count_prompt_tokens(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// The text of one stream: token `i` is `WORDS[(start + i) % 64]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenText {
    start: u32,
}

impl TokenText {
    pub(crate) fn new(start: u32) -> Self {
        Self { start }
    }

    pub(crate) fn word(self, i: u32) -> &'static str {
        WORDS[(self.start.wrapping_add(i) as usize) % WORDS.len()]
    }

    /// The whole text of `n` tokens (for non-streaming answers and cumulative protocols).
    pub(crate) fn text(self, n: u32) -> String {
        let mut s = String::with_capacity(n as usize * 8);
        for i in 0..n {
            s.push_str(self.word(i));
        }
        s
    }
}

/// A 64-bit mix (SplitMix64's finaliser): spreads seeds and counters into independent values.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a over the prompt's bytes, so the same prompt and seed give the same text.
pub(crate) fn hash_prompt(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_plain_and_one_token_each() {
        for w in WORDS {
            assert!(w.starts_with(' '));
            assert!(w[1..].bytes().all(|b| b.is_ascii_lowercase()), "{w:?}");
        }
        let text = TokenText::new(7).text(100);
        assert_eq!(count_prompt_tokens(&text), 100);
    }

    #[test]
    fn counts_whitespace_separated_words() {
        assert_eq!(count_prompt_tokens(""), 0);
        assert_eq!(count_prompt_tokens("Hello,  world\n!"), 3);
    }
}
