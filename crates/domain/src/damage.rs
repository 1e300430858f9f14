//! Damaged input for robustness tests: what a broken writer, a truncated transfer or a hostile
//! sender leaves in a file, a filter or an expression. Deterministic, so that a failing case
//! can be named and replayed. For tests only (of this crate and the others).

/// A small deterministic generator (xorshift64*), so that a failure names its case.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One damage of the kind a broken writer, a truncated transfer or a hostile file leaves in
/// a part: bytes dropped, repeated, changed to markup or digits, or the part cut short.
pub fn damage(data: &mut Vec<u8>, rng: &mut Rng) {
    const FILE: &[&str] = &[
        "99999999999",
        "XFD1048576",
        "-1",
        "1e308",
        "&#0;",
        "\u{10FFFF}",
    ];
    damage_with(data, rng, FILE);
}

/// [`damage`], inserting pieces of `vocabulary` (the tokens of the language being damaged)
/// where it inserts text.
pub fn damage_with(data: &mut Vec<u8>, rng: &mut Rng, vocabulary: &[&str]) {
    if data.is_empty() {
        data.push(b'<');
        return;
    }
    let at = rng.below(data.len());
    match rng.below(6) {
        0 => {
            let end = (at + 1 + rng.below(16)).min(data.len());
            data.drain(at..end);
        }
        1 => {
            let end = (at + 1 + rng.below(64)).min(data.len());
            let copy = data[at..end].to_vec();
            let to = rng.below(data.len());
            data.splice(to..to, copy);
        }
        2 => {
            let markup = b"<>\"'&=/:;";
            data[at] = markup[rng.below(markup.len())];
        }
        3 => {
            let numeric = b"0123456789-+.eE";
            data[at] = numeric[rng.below(numeric.len())];
        }
        4 => data.truncate(at),
        _ => {
            let text = vocabulary[rng.below(vocabulary.len())].as_bytes().to_vec();
            data.splice(at..at, text);
        }
    }
}
