//! Number formats made of zero placeholders (`00000`, `000-00-0000`): Excel shows such a
//! number padded and punctuated, and that text, not the bare number, is what the HR user
//! typed and expects (SPEC §5). Other formats (`0.00`, `#,##0`, dates) are not rendered: the
//! cell's value is used as it is.

/// One section of a format: digit placeholders and literal text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Digit,
    Literal(String),
}

/// A format whose sections (positive; negative; zero) are all zero placeholders and
/// literals. `None` for a section means "not renderable": the number is shown plainly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ZeroPattern {
    sections: Vec<Option<Vec<Part>>>,
}

/// Beyond this an f64 no longer holds every integer exactly, and Excel itself shows only 15
/// significant digits.
const MAX_EXACT: f64 = 1e15;

impl ZeroPattern {
    /// The pattern of a format code, or `None` when the format is not made of zero
    /// placeholders (so that the reader can skip the work for ordinary workbooks).
    pub(crate) fn parse(code: &str) -> Option<ZeroPattern> {
        let sections: Vec<Option<Vec<Part>>> = split_sections(code)
            .iter()
            .take(3)
            .map(|s| parse_section(s))
            .collect();
        // The positive section decides: without a placeholder it is not a number format
        // (a literal-only negative or zero section, "-" or "none", is fine).
        match sections.first() {
            Some(Some(parts)) if parts.contains(&Part::Digit) => Some(ZeroPattern { sections }),
            _ => None,
        }
    }

    /// The text Excel shows for `value`, or `None` to show the value plainly.
    pub(crate) fn render(&self, value: f64) -> Option<String> {
        if !value.is_finite() {
            return None;
        }
        // Excel rounds half away from zero, as f64::round does.
        let rounded = value.round();
        if rounded.abs() >= MAX_EXACT {
            return None;
        }
        // Exact: |rounded| < 1e15 < 2^63, and it is whole.
        let magnitude = rounded.abs() as u64;
        let (section, sign) = if rounded < 0.0 {
            match self.sections.get(1) {
                // The negative section carries its own sign, if any.
                Some(s) => (s, ""),
                None => (&self.sections[0], "-"),
            }
        } else if magnitude == 0 && self.sections.len() >= 3 {
            (&self.sections[2], "")
        } else {
            (&self.sections[0], "")
        };
        let parts = section.as_ref()?;
        Some(format!("{sign}{}", fill(parts, magnitude)))
    }
}

/// Split a format code on the `;` that separate sections, not on one that is quoted or
/// escaped.
fn split_sections(code: &str) -> Vec<String> {
    let mut sections = vec![String::new()];
    let mut chars = code.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let current = sections.last_mut();
        let Some(current) = current else { break };
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '\\' if !quoted => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ';' if !quoted => sections.push(String::new()),
            _ => current.push(c),
        }
    }
    sections
}

fn parse_section(section: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut chars = section.chars().peekable();
    let literal = |parts: &mut Vec<Part>, text: &str| match parts.last_mut() {
        Some(Part::Literal(l)) => l.push_str(text),
        _ => parts.push(Part::Literal(text.to_owned())),
    };
    while let Some(c) = chars.next() {
        match c {
            '0' => parts.push(Part::Digit),
            '"' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(q) => text.push(q),
                        // An unterminated quote: not a format Excel would accept.
                        None => return None,
                    }
                }
                literal(&mut parts, &text);
            }
            '\\' => literal(&mut parts, &chars.next()?.to_string()),
            '[' => {
                let mut inside = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(b) => inside.push(b),
                        None => return None,
                    }
                }
                // Colours and locale tags change nothing in the text; a condition
                // ([>=100]) or a currency ([$€-407]) does, and is not rendered here.
                let is_colour =
                    inside.chars().all(|b| b.is_ascii_alphanumeric()) && !inside.is_empty();
                let is_locale = inside.starts_with("$-");
                if !(is_colour || is_locale) {
                    return None;
                }
            }
            // The characters Excel shows literally without quotes.
            '$' | '-' | '+' | '/' | '(' | ')' | ':' | '!' | '^' | '&' | '\'' | '~' | '{' | '}'
            | '<' | '>' | '=' | ' ' => literal(&mut parts, &c.to_string()),
            // Anything else (#, ?, ., ',', %, E, @, date letters, General, _ and * padding)
            // is a format this module does not render.
            _ => return None,
        }
    }
    Some(parts)
}

/// Put the digits of `n` into the placeholders: missing digits are zeros, extra digits go
/// to the first placeholder, as in Excel.
fn fill(parts: &[Part], n: u64) -> String {
    let placeholders = parts.iter().filter(|p| **p == Part::Digit).count();
    let digits = format!("{n:0placeholders$}");
    let extra = digits.len() - placeholders;
    let mut out = String::with_capacity(digits.len() + 8);
    let mut next = 0;
    for part in parts {
        match part {
            Part::Digit => {
                let take = if next == 0 { extra + 1 } else { 1 };
                out.push_str(&digits[next..next + take]);
                next += take;
            }
            Part::Literal(text) => out.push_str(text),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(code: &str, value: f64) -> Option<String> {
        ZeroPattern::parse(code)?.render(value)
    }

    #[test]
    fn zero_padding() {
        assert_eq!(show("00000", 42.0).as_deref(), Some("00042"));
        assert_eq!(show("00000", 1234567.0).as_deref(), Some("1234567"));
        assert_eq!(show("00000", 0.0).as_deref(), Some("00000"));
        assert_eq!(
            show("00000", 41.5).as_deref(),
            Some("00042"),
            "rounds half up"
        );
        assert_eq!(show("00000", -42.0).as_deref(), Some("-00042"));
        assert_eq!(show("0", 7.0).as_deref(), Some("7"));
    }

    #[test]
    fn literals_and_sections() {
        assert_eq!(
            show("000-00-0000", 12345678.0).as_deref(),
            Some("012-34-5678")
        );
        assert_eq!(show("\"E\"00000", 42.0).as_deref(), Some("E00042"));
        assert_eq!(show("\\#000", 5.0).as_deref(), Some("#005"));
        assert_eq!(
            show("[Blue]0000;[Red]\"neg\"000", -5.0).as_deref(),
            Some("neg005")
        );
        assert_eq!(show("0000;-0000;\"none\"", 0.0).as_deref(), Some("none"));
        assert_eq!(show("00;\"a;b\"0", -3.0).as_deref(), Some("a;b3"));
        assert_eq!(
            show("00;;", -3.0).as_deref(),
            Some(""),
            "an empty section hides"
        );
    }

    #[test]
    fn other_formats_are_not_rendered() {
        for code in [
            "General",
            "0.00",
            "#,##0",
            "0%",
            "yyyy-mm-dd",
            "@",
            "0.00E+00",
            "[>=100]000",
            "_(000_)",
            "",
            "\"text\"",
        ] {
            assert_eq!(ZeroPattern::parse(code), None, "{code}");
        }
        assert_eq!(show("00000", 1e16), None, "beyond exact integers");
        assert_eq!(show("00000;General", -1.0), None);
    }
}
