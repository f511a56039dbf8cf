//! The prefilter: one cheap byte pass over a text whose counts let `Detectors::scan` skip the detectors that cannot match.

/// Cheap facts gathered in one byte pass, used to skip detectors that cannot match.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) digits: usize,
    pub(super) uppers: usize,
    pub(super) at_signs: usize,
    pub(super) dots: usize,
    pub(super) colons: usize,
    pub(super) dashes: usize,
    /// `=` or `:` (assignment operators).
    pub(super) assignment_ops: usize,
    /// Longest run of `[A-Za-z0-9+/=_-]`.
    pub(super) longest_token_run: usize,
    /// Longest run of bytes other than ASCII whitespace.
    pub(super) longest_word: usize,
    /// Whitespace other than single spaces, or non-ASCII (possible Unicode whitespace or
    /// zero-width characters): injection phrases must be matched on a normalised copy.
    pub(super) needs_normalization: bool,
}

impl Stats {
    pub(super) fn of(bytes: &[u8]) -> Self {
        let mut stats = Self::default();
        let mut run = 0;
        let mut word = 0;
        let mut previous = 0u8;
        for &b in bytes {
            if b.is_ascii_whitespace() {
                word = 0;
            } else {
                word += 1;
                stats.longest_word = stats.longest_word.max(word);
            }
            let token_char = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-');
            if token_char {
                run += 1;
                stats.longest_token_run = stats.longest_token_run.max(run);
            } else {
                run = 0;
            }
            match b {
                b'0'..=b'9' => stats.digits += 1,
                b'A'..=b'Z' => stats.uppers += 1,
                b'@' => stats.at_signs += 1,
                b'.' => stats.dots += 1,
                b':' => {
                    stats.colons += 1;
                    stats.assignment_ops += 1;
                }
                b'=' => stats.assignment_ops += 1,
                b'-' => stats.dashes += 1,
                b' ' if previous == b' ' => stats.needs_normalization = true,
                b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x80..=0xff => stats.needs_normalization = true,
                _ => {}
            }
            previous = b;
        }
        stats
    }
}
