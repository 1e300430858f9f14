//! libphonenumber's validity check, [`phonenumber::is_valid`], on the library's own metadata
//! and expressions, with each expression compiled once per thread.
//!
//! The library finds every compiled expression by its text in one cache behind one lock: the
//! text is hashed and compared on each use, about twenty uses per number, and the check runs
//! its rules three times (twice here in `is_valid`, once in `parse`). That was most of the
//! 15 µs a number cost, serialised across threads: 15 s of a million-row file. The rules are
//! unchanged: the same descriptors in the same order, the same expressions built with the
//! same options, matched the same way (a match that starts at the first digit). A test checks
//! the two agree on thousands of numbers across many countries.

use std::cell::RefCell;
use std::collections::HashMap;

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use phonenumber::{PhoneNumber, country};
use regex::Regex;

thread_local! {
    /// Compiled expressions by the address of the library's (static, never moved) expression.
    static COMPILED: RefCell<HashMap<usize, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// Whether the library's expression `source` (at `key`, its address) matches `value` from
/// its first character, as the library tests it.
fn matches_at_start(key: usize, source: &str, value: &str) -> bool {
    COMPILED.with(|compiled| {
        let mut compiled = compiled.borrow_mut();
        let regex = compiled.entry(key).or_insert_with(|| {
            regex::RegexBuilder::new(source)
                .ignore_whitespace(true)
                .build()
                .ok()
        });
        match regex {
            Some(regex) => regex.find(value).is_some_and(|m| m.start() == 0),
            // The library's own build would have failed the same way: no match.
            None => false,
        }
    })
}

/// `Descriptor::is_match`.
fn described(d: &Descriptor, value: &str) -> bool {
    let lengths = d.possible_length();
    if !lengths.is_empty() && !lengths.contains(&(value.len() as u16)) {
        return false;
    }
    let pattern = d.national_number();
    matches_at_start(
        std::ptr::from_ref(pattern) as usize,
        pattern.as_str(),
        value,
    )
}

/// `number_type(meta, value) != Type::Unknown`: the general pattern and one of the types.
fn known_type(meta: &Metadata, value: &str) -> bool {
    let d = meta.descriptors();
    if !described(d.general(), value) {
        return false;
    }
    [
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
        d.fixed_line(),
        d.mobile(),
    ]
    .into_iter()
    .flatten()
    .any(|desc| described(desc, value))
}

/// `validator::source_for`, resolved to its metadata as `is_valid_with` does.
fn source(code: u16, national: &str) -> Option<&'static Metadata> {
    let regions = DATABASE.region(&code)?;
    if regions.len() == 1 {
        return if regions[0] == "001" {
            DATABASE.by_code(&code)?.into_iter().next()
        } else {
            let id: country::Id = regions[0].parse().ok()?;
            DATABASE.by_id(id.as_ref())
        };
    }
    for region in regions {
        let meta = DATABASE.by_id(region)?;
        let here = match meta.leading_digits() {
            Some(pattern) => matches_at_start(
                std::ptr::from_ref(pattern) as usize,
                pattern.as_str(),
                national,
            ),
            None => known_type(meta, national),
        };
        if here {
            let id: country::Id = region.parse().ok()?;
            return DATABASE.by_id(id.as_ref());
        }
    }
    None
}

/// [`phonenumber::is_valid`].
pub(crate) fn is_valid(number: &PhoneNumber) -> bool {
    let national = number.national().to_string();
    source(number.country().code(), &national).is_some_and(|meta| known_type(meta, &national))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers of many shapes for many countries (country codes with one region and with
    /// several, non-geographic ones), valid and not, checked against the library.
    #[test]
    fn agrees_with_the_library() {
        let codes = [
            1, 7, 20, 27, 31, 33, 34, 39, 41, 44, 46, 49, 52, 55, 61, 62, 64, 65, 81, 82, 86, 90,
            91, 212, 234, 254, 262, 290, 351, 353, 358, 383, 590, 599, 800, 808, 870, 878, 881,
            882, 883, 888, 971, 979,
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut checked, mut valid) = (0, 0);
        for code in codes {
            for _ in 0..150 {
                let len = 4 + (next() % 10) as usize;
                let mut digits: String = (0..len)
                    .map(|_| char::from(b'0' + (next() % 10) as u8))
                    .collect();
                // Mostly plausible leading digits, sometimes a leading zero (Italy keeps it).
                if next() % 4 != 0 {
                    digits.replace_range(0..1, &((next() % 9) + 1).to_string());
                }
                let text = format!("+{code}{digits}");
                let Ok(parsed) = phonenumber::parse(None, &text) else {
                    continue;
                };
                let expected = phonenumber::is_valid(&parsed);
                assert_eq!(is_valid(&parsed), expected, "{text}");
                checked += 1;
                valid += usize::from(expected);
            }
        }
        // Known numbers of the library's own tests, and of SPEC §2.
        for (text, expected) in [
            ("+1 6502530000", true),
            ("+39 0236618300", true),
            ("+330631966543", true),
            ("+44 7912345678", true),
            ("+800 12345678", true),
            ("+979 123456789", true),
            ("+64 21387835", true),
            ("+1 2530000", false),
            ("+447495944376", true),
            ("+44 1534 456789", true),
        ] {
            let parsed = phonenumber::parse(None, text).unwrap();
            assert_eq!(phonenumber::is_valid(&parsed), expected, "{text}");
            assert_eq!(is_valid(&parsed), expected, "{text}");
        }
        assert!(checked > 4000, "{checked} numbers checked");
        assert!(valid > 200, "only {valid} valid numbers among {checked}");
    }
}
