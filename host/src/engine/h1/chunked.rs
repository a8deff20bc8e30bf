//! `Transfer-Encoding: chunked`, decoded as bytes arrive: any split of the input gives the
//! same data, and a malformed size line is an error at the byte it is found, not a hang.

/// Longest chunk-size line (size, extensions) accepted.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the size's hex digits.
    Size,
    /// After the digits: extensions or whitespace until CR LF.
    SizeRest,
    SizeLf,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    DataCr,
    DataLf,
    /// After the last (zero) chunk: trailer lines until an empty one.
    TrailerStart,
    TrailerLine,
    TrailerLf {
        empty: bool,
    },
    Done,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("invalid chunk size line (byte {0:#04x})")]
    Size(u8),
    #[error("chunk size too large")]
    TooLarge,
    #[error("chunk size line longer than {MAX_LINE} bytes")]
    LongLine,
    #[error("chunk data not followed by CR LF (byte {0:#04x})")]
    DataEnd(u8),
}

/// The decoder's place in a chunked body.
#[derive(Debug)]
pub struct Chunked {
    state: State,
    size: u64,
    line: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size,
            size: 0,
            line: 0,
        }
    }
}

impl Chunked {
    /// Whether the last chunk and its trailer have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, appending the data to `out`; returns how many input bytes it took
    /// (all of them unless the body ended inside `input`).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Data(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::Size => {
                    let digit = match b {
                        b'0'..=b'9' => Some(b - b'0'),
                        b'a'..=b'f' => Some(b - b'a' + 10),
                        b'A'..=b'F' => Some(b - b'A' + 10),
                        _ => None,
                    };
                    match digit {
                        Some(d) => {
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(u64::from(d)))
                                .ok_or(ChunkError::TooLarge)?;
                        }
                        None if self.line == 0 => return Err(ChunkError::Size(b)),
                        None if b == b'\r' => self.state = State::SizeLf,
                        None if b == b';' || b == b' ' || b == b'\t' => {
                            self.state = State::SizeRest;
                        }
                        None => return Err(ChunkError::Size(b)),
                    }
                    self.line += 1;
                }
                State::SizeRest => {
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' {
                        return Err(ChunkError::Size(b));
                    }
                    self.line += 1;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::Size(b));
                    }
                    self.line = 0;
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data(self.size)
                    };
                    self.size = 0;
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::DataEnd(b));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::DataEnd(b));
                    }
                    self.state = State::Size;
                }
                State::TrailerStart | State::TrailerLine => {
                    let empty = self.state == State::TrailerStart;
                    if b == b'\r' {
                        self.state = State::TrailerLf { empty };
                    } else {
                        self.state = State::TrailerLine;
                        self.line += 1;
                    }
                }
                State::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Err(ChunkError::DataEnd(b));
                    }
                    self.line = 0;
                    if empty {
                        self.state = State::Done;
                        return Ok(i + 1);
                    }
                    self.state = State::TrailerStart;
                }
                State::Done => return Ok(i),
            }
            if self.line > MAX_LINE {
                return Err(ChunkError::LongLine);
            }
            i += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";

    fn whole(input: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        let n = c.decode(input, &mut out)?;
        Ok((out, n, c.is_done()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers_and_stops_at_the_end() {
        let (out, n, done) = whole(BODY).unwrap();
        assert_eq!(out, b"hello, world");
        assert!(done);
        assert_eq!(&BODY[n..], b"NEXT", "bytes after the body are left");
    }

    #[test]
    fn every_split_gives_the_same_data() {
        for a in 0..BODY.len() {
            for b in a..BODY.len() {
                let mut c = Chunked::default();
                let mut out = Vec::new();
                let mut taken = 0;
                for part in [&BODY[..a], &BODY[a..b], &BODY[b..]] {
                    if c.is_done() {
                        break;
                    }
                    taken += c.decode(part, &mut out).unwrap();
                }
                assert_eq!(out, b"hello, world", "split at {a}, {b}");
                assert_eq!(&BODY[taken..], b"NEXT", "split at {a}, {b}");
            }
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(whole(b"zz\r\n").unwrap_err(), ChunkError::Size(b'z'));
        assert_eq!(whole(b"5\nhello").unwrap_err(), ChunkError::Size(b'\n'));
        assert_eq!(
            whole(b"2\r\nhiX\r\n").unwrap_err(),
            ChunkError::DataEnd(b'X')
        );
        assert_eq!(
            whole(b"fffffffffffffffff\r\n").unwrap_err(),
            ChunkError::TooLarge
        );
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        assert_eq!(whole(&long).unwrap_err(), ChunkError::LongLine);
    }
}
