//! Validated values of the user record. Each type can only be built through its parser, so a
//! value that exists is a valid one (SPEC §2).

use std::fmt;

use chrono::NaiveDate;

/// Why a value was refused. The message is written for an admin who has to fix the source
/// data, so it says what was wrong and what a valid value looks like.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// Longest value accepted in a short text field (names, titles, identifiers).
pub const MAX_SHORT_TEXT: usize = 1_000;
/// Longest value accepted in the free-text "About me" field.
pub const MAX_LONG_TEXT: usize = 10_000;

fn is_invisible(c: char) -> bool {
    // Zero-width characters are not `White_Space` in Unicode but come along with copy-paste
    // from HR systems and web pages; a key that differs only by one must not be "different".
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// Trim leading and trailing white space (non-breaking spaces included) and zero-width
/// characters, as SPEC §5 requires of every cell.
pub fn clean(raw: &str) -> &str {
    raw.trim_matches(|c: char| c.is_whitespace() || is_invisible(c))
}

fn check_text(label: &str, value: &str, max: usize) -> Result<(), ValueError> {
    if value.chars().count() > max {
        return Err(ValueError(format!(
            "{label} is longer than {max} characters: shorten it"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ValueError(format!(
            "{label} contains control characters: remove them"
        )));
    }
    Ok(())
}

/// Check a free-text field (names, titles, custom fields).
pub fn text(label: &str, value: &str, long: bool) -> Result<String, ValueError> {
    check_text(
        label,
        value,
        if long { MAX_LONG_TEXT } else { MAX_SHORT_TEXT },
    )?;
    Ok(value.to_owned())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, ValueError> {
                let value = clean(raw);
                if value.is_empty() {
                    return Err(ValueError(concat!($label, " is empty").to_owned()));
                }
                if value.chars().any(char::is_control) {
                    return Err(ValueError(concat!(
                        $label,
                        " contains control characters or line breaks: remove them"
                    )
                    .to_owned()));
                }
                if value.chars().count() > 255 {
                    return Err(ValueError(concat!(
                        $label,
                        " is longer than 255 characters: shorten it"
                    )
                    .to_owned()));
                }
                Ok(Self(value.to_owned()))
            }
            /// Rebuild a value that storage holds; it was validated when it was written.
            pub fn from_stored(value: String) -> Self {
                Self(value)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

identifier!(
    /// The immutable link between a user and its record in the source. Compared exactly.
    ExternalId,
    "External ID"
);
identifier!(
    /// An employee number. Compared exactly (leading zeros matter).
    EmployeeId,
    "Employee ID"
);
identifier!(
    /// A username as sent. Uniqueness compares [`UserName::normalized`].
    UserName,
    "Username"
);

impl UserName {
    /// The form uniqueness and lookups compare: usernames are case-insensitive.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A work email address: `user@domain.tld`, ASCII, with no hyperlink or other markup.
///
/// Deliberately stricter than RFC 5322: quoted local parts, comments, IP-literal domains and
/// dotless domains are legal there but are always a data-entry mistake in an HR export, and
/// any markup (`<a href=…>`, `mailto:`, `[text](url)`) is refused because the value is shown
/// in other people's apps.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    value: String,
    normalized: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Email, ValueError> {
        let value = clean(raw);
        let fail = |why: &str| {
            Err(ValueError(format!(
                "'{value}' is not a valid email address: {why}. Use the form name@company.com"
            )))
        };
        if value.is_empty() {
            return fail("it is empty");
        }
        if value.len() > 254 {
            return fail("it is longer than 254 characters");
        }
        if value.contains(['<', '>', '"', '(', ')', '[', ']']) || value.contains("://") {
            return fail("it contains markup or a link; give the plain address only");
        }
        if value.chars().any(char::is_whitespace) {
            return fail("it contains a space");
        }
        if !value.is_ascii() {
            return fail("it contains non-ASCII characters");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return fail("it has no '@'");
        };
        if domain.contains('@') {
            return fail("it has more than one '@'");
        }
        if local.is_empty() || local.len() > 64 {
            return fail("the part before '@' must have 1 to 64 characters");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return fail("the part before '@' has a misplaced dot");
        }
        const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~.-";
        if !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        {
            return fail("the part before '@' contains a character that is not allowed");
        }
        if !domain.contains('.') {
            return fail("the domain needs a dot, as in company.com");
        }
        for label in domain.split('.') {
            if label.is_empty() || label.len() > 63 {
                return fail("the domain has an empty or over-long part");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return fail("a domain part starts or ends with '-'");
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return fail("the domain contains a character that is not allowed");
            }
        }
        // The last label is a top-level domain: letters, or an IDN in its `xn--` form.
        let tld = domain.rsplit('.').next().unwrap_or_default();
        let tld_ok = (tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
            || (tld.starts_with("xn--") && tld.len() > 4);
        if !tld_ok {
            return fail("the domain does not end in a top-level domain such as .com");
        }
        Ok(Email {
            value: value.to_owned(),
            normalized: value.to_ascii_lowercase(),
        })
    }

    /// Rebuild an email that storage holds; it was validated when it was written.
    pub fn from_stored(value: String) -> Email {
        let normalized = value.to_ascii_lowercase();
        Email { value, normalized }
    }

    /// As sent (trimmed).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The form uniqueness compares: emails are case-insensitive.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.value)
    }
}

/// Phone numbers already read, by their cleaned text, so that each distinct number runs
/// through libphonenumber once per file (parsing costs a few µs, serialised on one lock inside
/// the library).
///
/// Besides what it has validated itself, the cache may be given the numbers storage already
/// holds ([`PhoneCache::know`]): a stored number was validated when it was written, so a file
/// that repeats it needs no second check. Only numbers in international form are taken, whose
/// reading does not depend on a default region.
#[derive(Debug, Default)]
pub struct PhoneCache {
    known: std::collections::HashMap<Box<str>, Box<str>>,
    /// How many more numbers this cache remembers on its own: numbers that occur once (a
    /// mobile per person) would only grow it.
    remember: usize,
}

impl PhoneCache {
    /// Numbers remembered from validation (stored numbers given with `know` are not counted).
    const REMEMBERED: usize = 10_000;

    pub fn new() -> PhoneCache {
        PhoneCache {
            known: std::collections::HashMap::new(),
            remember: Self::REMEMBERED,
        }
    }

    /// A number as storage holds it (the value as sent, and its E.164 form).
    pub fn know(&mut self, value: &str, e164: &str) {
        if value.starts_with('+') && clean(value) == value {
            self.known.insert(value.into(), e164.into());
        }
    }

    /// [`Phone::parse`], remembered.
    pub fn parse(&mut self, raw: &str, region: Option<PhoneRegion>) -> Result<Phone, ValueError> {
        let value = clean(raw);
        if let Some(e164) = self.known.get(value) {
            return Ok(Phone::from_stored(value.to_owned(), e164.to_string()));
        }
        let phone = Phone::parse(value, region)?;
        if self.remember > 0 {
            self.remember -= 1;
            self.known.insert(value.into(), phone.e164().into());
        }
        Ok(phone)
    }
}

/// A default region for national phone numbers, such as `GB` (ISO 3166-1 alpha-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhoneRegion(phonenumber::country::Id);

impl PhoneRegion {
    pub fn parse(code: &str) -> Result<PhoneRegion, ValueError> {
        code.trim()
            .to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .map(PhoneRegion)
            .map_err(|_| {
                ValueError(format!(
                    "'{code}' is not a phone region: give a two-letter country code such as GB or US"
                ))
            })
    }

    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

/// A phone number that libphonenumber's rules accept as valid. Stored and returned exactly as
/// sent; compared (matching, uniqueness) and dialled in its E.164 form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    value: String,
    e164: String,
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

impl Phone {
    pub fn parse(raw: &str, region: Option<PhoneRegion>) -> Result<Phone, ValueError> {
        let value = clean(raw);
        let hint = if region.is_some() {
            "use international form such as +447495944376 or a valid national number"
        } else {
            "use international form such as +447495944376 (national numbers need the \
             configuration's phone region)"
        };
        let fail = |why: &str| {
            Err(ValueError(format!(
                "'{value}' is not a valid phone number: {why}; {hint}"
            )))
        };
        if value.is_empty() {
            return fail("it is empty");
        }
        // RFC 7643 §4.1.2 recommends RFC 3966 URIs for SCIM phone numbers
        // (`tel:+1-201-555-0123`). Only a global number qualifies: a local tel: number needs a
        // `phone-context`, and parameters (`;ext=`) carry what SPEC §2 does not store.
        let number = match strip_prefix_ignore_case(value, "tel:") {
            None => value,
            Some(uri) if uri.contains(';') => {
                return fail("tel: parameters such as ;ext= are not supported");
            }
            Some(uri) if !uri.starts_with('+') => {
                return fail("a tel: URI must hold a global number starting with +");
            }
            // RFC 3966's visual separators are `-`, `.`, `(` and `)`; no spaces.
            Some(uri) if uri.contains(' ') => return fail("a tel: URI has no spaces"),
            Some(uri) => uri,
        };
        // libphonenumber also reads letters (vanity numbers) and extensions; an HR record
        // holding those is a data-entry mistake, so only the separators of SPEC §2 pass.
        let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')');
        let (plus, rest) = match number.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        if !rest.chars().all(allowed) {
            return fail(
                "it contains characters other than digits, spaces, dashes, dots and parentheses",
            );
        }
        if !plus && region.is_none() {
            return fail("it is not in international form");
        }
        let parsed = match phonenumber::parse(region.map(|r| r.0), number) {
            Ok(parsed) => parsed,
            Err(_) => return fail("it cannot be read as a phone number"),
        };
        if !crate::phone_valid::is_valid(&parsed) {
            return fail("no such number exists in its country's numbering plan");
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Phone {
            value: value.to_owned(),
            e164,
        })
    }

    /// Rebuild a phone number that storage holds with its E.164 form; it was validated when
    /// it was written.
    pub fn from_stored(value: String, e164: String) -> Phone {
        Phone { value, e164 }
    }

    /// As sent (trimmed).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// E.164 form, e.g. `+447495944376`.
    pub fn e164(&self) -> &str {
        &self.e164
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.value)
    }
}

/// A boolean from a file: `true` or `false` in any letter case, nothing else (SPEC §2).
pub fn parse_bool(raw: &str) -> Result<bool, ValueError> {
    let value = clean(raw);
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ValueError(format!(
            "'{value}' is not a boolean: use true or false"
        )))
    }
}

/// An ISO 8601 calendar date, `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, ValueError> {
    let value = clean(raw);
    let fail = || {
        Err(ValueError(format!(
            "'{value}' is not a date: use the ISO form YYYY-MM-DD, e.g. 2024-01-31"
        )))
    };
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return fail();
    }
    let num = |range: std::ops::Range<usize>| value[range].parse::<u32>().unwrap_or(0);
    match NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10)) {
        Some(date) => Ok(date),
        None => fail(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_trims_nbsp_and_zero_width() {
        assert_eq!(clean("\u{00A0} jane \u{200B}\u{FEFF}"), "jane");
        assert_eq!(clean("a b"), "a b");
    }

    #[test]
    fn emails() {
        for ok in [
            "jane@acme.com",
            "Jane.Doe+hr@mail.acme.co.uk",
            " jane@acme.com ",
            "o'neil@acme.io",
            "x@xn--bcher-kva.xn--p1ai",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "jane",
            "jane@acme",
            "jane@@acme.com",
            "jane@acme..com",
            ".jane@acme.com",
            "jane doe@acme.com",
            "<a href=\"mailto:jane@acme.com\">jane@acme.com</a>",
            "[jane@acme.com](mailto:jane@acme.com)",
            "mailto:jane@acme.com",
            "http://acme.com/jane@acme.com",
            "jane@-acme.com",
            "jane@acme.c0m",
            "josé@acme.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be invalid");
        }
        let e = Email::parse("Jane@Acme.COM").unwrap();
        assert_eq!(e.as_str(), "Jane@Acme.COM");
        assert_eq!(e.normalized(), "jane@acme.com");
    }

    #[test]
    fn phones_international() {
        for (raw, e164) in [
            ("+447495944376", "+447495944376"),
            ("+44 7495 944376", "+447495944376"),
            ("+44-7495-944376", "+447495944376"),
            ("+44 (0) 7495.944376", "+447495944376"),
            ("+1 425 555 0100", "+14255550100"),
            // RFC 3966, as RFC 7643 §4.1.2 recommends for SCIM.
            ("tel:+44-7495-944376", "+447495944376"),
            ("TEL:+1-425-555-0100", "+14255550100"),
            ("tel:+1.(425).555.0100", "+14255550100"),
        ] {
            let p = Phone::parse(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(p.as_str(), raw);
            assert_eq!(p.e164(), e164);
        }
    }

    #[test]
    fn phones_national_need_a_region() {
        assert!(Phone::parse("07495 944376", None).is_err());
        let gb = PhoneRegion::parse("gb").unwrap();
        assert_eq!(
            Phone::parse("07495 944376", Some(gb)).unwrap().e164(),
            "+447495944376"
        );
        let us = PhoneRegion::parse("US").unwrap();
        assert_eq!(
            Phone::parse("4255550100", Some(us)).unwrap().e164(),
            "+14255550100"
        );
        assert!(PhoneRegion::parse("XX").is_err());
    }

    #[test]
    fn phones_invalid() {
        let gb = PhoneRegion::parse("GB").ok();
        for bad in [
            "",
            "+44",
            "+44 1",
            "+1-800-FLOWERS",
            "+44 7495 944376 ext 12",
            "12345",
            "+999 1234567",
            "phone",
            "tel:",
            "tel:07495944376",
            "tel:+44 7495 944376",
            "tel:+1-800-FLOWERS",
            "tel:tel:+447495944376",
        ] {
            assert!(Phone::parse(bad, gb).is_err(), "{bad} should be invalid");
        }
        let ext = Phone::parse("tel:+44-7495-944376;ext=12", gb).unwrap_err();
        assert!(ext.to_string().contains(";ext= are not supported"), "{ext}");
        let local = Phone::parse("tel:07495944376", gb).unwrap_err();
        assert!(local.to_string().contains("global number"), "{local}");
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool(" False "), Ok(false));
        for bad in ["yes", "1", "0", "t", "", "truee"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(parse_date("2024-02-29").unwrap().to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-1-5",
            "31/01/2024",
            "2024-13-01",
            "20240101",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers() {
        assert_eq!(ExternalId::parse(" 00042 ").unwrap().as_str(), "00042");
        assert!(ExternalId::parse("  ").is_err());
        assert!(UserName::parse("a\nb").is_err());
        assert_eq!(UserName::parse("JDoe").unwrap().normalized(), "jdoe");
    }
}
