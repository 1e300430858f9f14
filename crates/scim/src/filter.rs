//! The filter language of RFC 7644 §3.4.2.2: parsed into a [`Filter`], checked against the
//! schema, and evaluated against a resource held as JSON.
//!
//! The parser is lenient where identity providers stray from the grammar (letter case of
//! keywords, extra whitespace, Entra's unquoted values, a sub-attribute after a value path)
//! and strict about size: the length and the nesting of a filter are bounded, and nesting is
//! checked before each recursion, so no input can exhaust the stack.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::DateTime;
use serde_json::{Number, Value};

use crate::error::ScimError;
use crate::schema::{AttrDef, AttrPath, CORE_USER, Container, ENTERPRISE_USER, Kind, UserSchema};

/// The longest filter accepted, in characters.
pub const MAX_FILTER_LEN: usize = 4096;
/// The deepest nesting accepted: each `(`…`)`, `not`, and `[`…`]` is one level.
pub const MAX_FILTER_DEPTH: usize = 16;

/// A comparison operator (`pr` is [`Filter::Present`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// The operator a word names, in any letter case.
    fn from_word(word: &str) -> Option<CompareOp> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
}

/// The value a comparison compares with.
#[derive(Clone, Debug, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    /// A number, with its text as written. Compared with a string attribute the text is used:
    /// Entra sends `externalId eq 1234` for the string "1234".
    Number {
        number: Number,
        text: String,
    },
    String(String),
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `path op value`. With `value_filter`, only the elements of the (multi-valued) attribute
    /// that it selects are compared: `emails[type eq "work"].value eq "a@b.c"`, where `path`
    /// is `emails.value`.
    Compare {
        path: AttrPath,
        value_filter: Option<Box<Filter>>,
        op: CompareOp,
        value: CompValue,
    },
    /// `path pr`, with an optional value filter as in [`Filter::Compare`].
    Present {
        path: AttrPath,
        value_filter: Option<Box<Filter>>,
    },
    /// `path[filter]`: some element of the attribute matches `filter`, whose paths name
    /// sub-attributes of the element.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// The attributes the store can look users up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexedAttr {
    Id,
    UserName,
    ExternalId,
    Email,
    EmployeeNumber,
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parse a filter (the `filter` query parameter, already URL-decoded).
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    let len = text.chars().count();
    if len > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "the filter is {len} characters long; at most {MAX_FILTER_LEN} are accepted"
        )));
    }
    let mut p = Parser::new(text, "filter", ScimError::invalid_filter);
    p.skip_ws();
    if p.peek().is_none() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let filter = p.or(0, false)?;
    p.finish("'and', 'or' or the end of the filter")?;
    Ok(filter)
}

/// Parse a PATCH path: `attrPath`, `attrPath[valFilter]` or `attrPath[valFilter].subAttr`.
/// With a value filter, the returned path's `sub` is the sub-attribute after `]`. Errors are
/// 400 invalidPath.
pub(crate) fn parse_path(text: &str) -> Result<(AttrPath, Option<Filter>), ScimError> {
    let len = text.chars().count();
    if len > MAX_FILTER_LEN {
        return Err(ScimError::invalid_path(format!(
            "the path is {len} characters long; at most {MAX_FILTER_LEN} are accepted"
        )));
    }
    let mut p = Parser::new(text, "path", ScimError::invalid_path);
    p.skip_ws();
    let mut path = p.attr_path()?;
    let mut filter = None;
    if p.peek() == Some('[') {
        if path.sub.is_some() {
            return Err(p.fail_at(
                p.pos,
                "'[' must follow an attribute name, not a sub-attribute",
            ));
        }
        filter = Some(p.bracket(1)?);
        if p.peek() == Some('.') {
            p.pos += 1;
            path.sub = Some(p.name()?);
        }
    }
    p.finish("the end of the path")?;
    Ok((path, filter))
}

const EXPECTED_OPERAND: &str = "an attribute path, '(' or 'not'";
const EXPECTED_OPERATOR: &str = "an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)";
const EXPECTED_VALUE: &str = "a value (a quoted string, true, false, null or a number)";

/// A recursive-descent parser over the characters of the text, so that positions in error
/// details are character positions, whatever the UTF-8 encoding.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// "filter" or "path", for error details.
    what: &'static str,
    /// Makes the error: invalidFilter for a filter, invalidPath for a PATCH path.
    fail: fn(String) -> ScimError,
}

impl Parser {
    fn new(text: &str, what: &'static str, fail: fn(String) -> ScimError) -> Parser {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            what,
            fail,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Skip whitespace; whether there was any.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn fail_at(&self, pos: usize, message: impl std::fmt::Display) -> ScimError {
        (self.fail)(format!(
            "invalid {} at character {}: {message}",
            self.what,
            pos + 1
        ))
    }

    /// "expected X, found Y" at `pos`, Y being the next word of the text (shortened).
    fn expected(&self, pos: usize, expected: &str) -> ScimError {
        let rest = self.chars.get(pos..).unwrap_or_default();
        let found = match rest.first() {
            None => format!("the end of the {}", self.what),
            Some(c) if c.is_whitespace() => format!("{c:?}"),
            Some(_) => {
                let word: String = rest.iter().take_while(|c| !c.is_whitespace()).collect();
                let short: String = word.chars().take(24).collect();
                let more = if short.len() < word.len() { "…" } else { "" };
                format!("'{short}{more}'")
            }
        };
        self.fail_at(pos, format!("expected {expected}, found {found}"))
    }

    /// The whole text must have been read.
    fn finish(&mut self, expected: &str) -> Result<(), ScimError> {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            Some(')') => Err(self.fail_at(self.pos, "')' without a matching '('")),
            Some(_) => Err(self.expected(self.pos, expected)),
        }
    }

    /// Whether a keyword (ASCII, lower case) starts here, in any letter case, as a whole word.
    fn keyword(&self, keyword: &str) -> bool {
        let end = self.pos + keyword.len();
        let Some(word) = self.chars.get(self.pos..end) else {
            return false;
        };
        word.iter()
            .zip(keyword.chars())
            .all(|(a, b)| a.eq_ignore_ascii_case(&b))
            && self
                .chars
                .get(end)
                .is_none_or(|c| c.is_whitespace() || *c == '(')
    }

    /// Refuse to open one more level of nesting past the limit. Called before recursing.
    fn enter(&self, depth: usize, pos: usize) -> Result<(), ScimError> {
        if depth >= MAX_FILTER_DEPTH {
            return Err(self.fail_at(
                pos,
                format!("nested more than {MAX_FILTER_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    /// `and-expr *("or" and-expr)`: `or` binds loosest.
    fn or(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, ScimError> {
        let first = self.and(depth, in_brackets)?;
        let mut rest = Vec::new();
        loop {
            let save = self.pos;
            self.skip_ws();
            if !self.keyword("or") {
                self.pos = save;
                break;
            }
            self.pos += 2;
            rest.push(self.and(depth, in_brackets)?);
        }
        Ok(if rest.is_empty() {
            first
        } else {
            rest.insert(0, first);
            Filter::Or(rest)
        })
    }

    /// `unary *("and" unary)`.
    fn and(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, ScimError> {
        let first = self.unary(depth, in_brackets)?;
        let mut rest = Vec::new();
        loop {
            let save = self.pos;
            self.skip_ws();
            if !self.keyword("and") {
                self.pos = save;
                break;
            }
            self.pos += 3;
            rest.push(self.unary(depth, in_brackets)?);
        }
        Ok(if rest.is_empty() {
            first
        } else {
            rest.insert(0, first);
            Filter::And(rest)
        })
    }

    /// `"not" "(" filter ")"`, `"(" filter ")"` or an attribute expression. `not` without
    /// parentheses (`not title pr`) is accepted too: some clients send it.
    fn unary(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, ScimError> {
        self.skip_ws();
        let start = self.pos;
        if self.keyword("not") {
            self.enter(depth, start)?;
            self.pos += 3;
            self.skip_ws();
            let inner = if self.peek() == Some('(') {
                self.group(depth + 1, in_brackets)?
            } else {
                self.unary(depth + 1, in_brackets)?
            };
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some('(') {
            self.enter(depth, start)?;
            return self.group(depth + 1, in_brackets);
        }
        self.attr_expr(depth, in_brackets)
    }

    /// `"(" filter ")"`, at the `(`.
    fn group(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, ScimError> {
        let open = self.pos;
        self.pos += 1;
        let inner = self.or(depth, in_brackets)?;
        self.skip_ws();
        if self.peek() != Some(')') {
            let expected = format!("')' to close the '(' at character {}", open + 1);
            return Err(self.expected(self.pos, &expected));
        }
        self.pos += 1;
        Ok(inner)
    }

    /// `"[" filter "]"`, at the `[`. Paths inside are relative to an element.
    fn bracket(&mut self, depth: usize) -> Result<Filter, ScimError> {
        let open = self.pos;
        self.pos += 1;
        let inner = self.or(depth, true)?;
        self.skip_ws();
        if self.peek() != Some(']') {
            let expected = format!("']' to close the '[' at character {}", open + 1);
            return Err(self.expected(self.pos, &expected));
        }
        self.pos += 1;
        Ok(inner)
    }

    /// `attrPath "pr"`, `attrPath op value`, `attrPath "[" filter "]"`, and the non-standard
    /// `attrPath "[" filter "]" "." subAttr ("pr" / op value)` that identity providers send.
    fn attr_expr(&mut self, depth: usize, in_brackets: bool) -> Result<Filter, ScimError> {
        let mut path = self.attr_path()?;
        if self.peek() != Some('[') {
            return self.condition(path, None);
        }
        if in_brackets {
            return Err(self.fail_at(self.pos, "a value filter cannot contain another one"));
        }
        if path.sub.is_some() {
            return Err(self.fail_at(
                self.pos,
                "'[' must follow an attribute name, not a sub-attribute",
            ));
        }
        self.enter(depth, self.pos)?;
        let filter = Box::new(self.bracket(depth + 1)?);
        if self.peek() == Some('.') {
            self.pos += 1;
            path.sub = Some(self.name()?);
            return self.condition(path, Some(filter));
        }
        Ok(Filter::ValuePath { path, filter })
    }

    /// The operator and value after a path.
    fn condition(
        &mut self,
        path: AttrPath,
        value_filter: Option<Box<Filter>>,
    ) -> Result<Filter, ScimError> {
        self.skip_ws();
        let at = self.pos;
        let word = self.take_while(|c| c.is_ascii_alphabetic());
        if word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present { path, value_filter });
        }
        let Some(op) = CompareOp::from_word(&word) else {
            return Err(self.expected(at, EXPECTED_OPERATOR));
        };
        let value = self.comp_value()?;
        Ok(Filter::Compare {
            path,
            value_filter,
            op,
            value,
        })
    }

    /// `[URN ":"] ATTRNAME ["." subAttr]`.
    fn attr_path(&mut self) -> Result<AttrPath, ScimError> {
        let start = self.pos;
        let text = self.take_while(is_path_char);
        if text.is_empty() {
            return Err(self.expected(start, EXPECTED_OPERAND));
        }
        parse_attr_path(&text).ok_or_else(|| {
            self.fail_at(
                start,
                format!("'{text}' is not an attribute path ([urn:…:]name[.subAttribute])"),
            )
        })
    }

    /// A sub-attribute name after `].`.
    fn name(&mut self) -> Result<String, ScimError> {
        let start = self.pos;
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'));
        if valid_name(&name) {
            Ok(name)
        } else {
            Err(self.expected(start, "a sub-attribute name"))
        }
    }

    /// A JSON string, `true`, `false`, `null`, a JSON number, or a bare word (Entra's
    /// unquoted values), which runs up to whitespace, `)` or `]`.
    fn comp_value(&mut self) -> Result<CompValue, ScimError> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() == Some('"') {
            return self.string().map(CompValue::String);
        }
        let text = self.take_while(|c| !(c.is_whitespace() || c == ')' || c == ']'));
        Ok(match text.as_str() {
            "" => return Err(self.expected(start, EXPECTED_VALUE)),
            "true" => CompValue::Bool(true),
            "false" => CompValue::Bool(false),
            "null" => CompValue::Null,
            _ => match text.parse::<Number>() {
                Ok(number) => CompValue::Number { number, text },
                Err(_) => CompValue::String(text),
            },
        })
    }

    /// A JSON string, at its opening quote.
    fn string(&mut self) -> Result<String, ScimError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.fail_at(open, "the string that starts here has no closing '\"'"));
            };
            self.pos += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let at = self.pos - 1;
                    let escaped = match self.peek() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('/') => '/',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('u') => {
                            self.pos += 1;
                            out.push(self.unicode_escape(at)?);
                            continue;
                        }
                        _ => {
                            return Err(self.fail_at(
                                at,
                                "unknown escape; use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX",
                            ));
                        }
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
    }

    /// The rest of `\uXXXX` (after the `u`); a UTF-16 surrogate pair is two escapes.
    fn unicode_escape(&mut self, at: usize) -> Result<char, ScimError> {
        let unpaired = "an unpaired UTF-16 surrogate in a \\u escape";
        let first = self.hex4(at)?;
        let code = match first {
            0xD800..=0xDBFF => {
                let next = self.chars.get(self.pos..self.pos + 2);
                if next != Some(&['\\', 'u'][..]) {
                    return Err(self.fail_at(at, unpaired));
                }
                self.pos += 2;
                let second = self.hex4(at)?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.fail_at(at, unpaired));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.fail_at(at, unpaired)),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.fail_at(at, "an invalid \\u escape"))
    }

    fn hex4(&mut self, at: usize) -> Result<u32, ScimError> {
        let mut code = 0;
        for _ in 0..4 {
            let Some(digit) = self.peek().and_then(|c| c.to_digit(16)) else {
                return Err(self.fail_at(at, "\\u must be followed by four hexadecimal digits"));
            };
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_' | '$')
}

/// `ALPHA *(ALPHA / DIGIT / "-" / "_")`, or `$ref`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name == "$ref"
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// Split and validate the text of a path, which holds path characters only. Being ASCII, it
/// is safe for `AttrPath::parse`, which slices bytes.
fn parse_attr_path(text: &str) -> Option<AttrPath> {
    let path = AttrPath::parse(text);
    let urn_ok = path.urn.as_deref().is_none_or(|urn| {
        let mut parts = urn.split(':');
        parts.clone().count() >= 2 && parts.all(|p| !p.is_empty() && !p.contains('$'))
    });
    (urn_ok && valid_name(&path.name) && path.sub.as_deref().is_none_or(valid_name)).then_some(path)
}

fn display_path(path: &AttrPath) -> String {
    let mut text = String::new();
    if let Some(urn) = &path.urn {
        text.push_str(urn);
        text.push(':');
    }
    text.push_str(&path.name);
    if let Some(sub) = &path.sub {
        text.push('.');
        text.push_str(sub);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Resolution against the schema (shared with PATCH)

/// What a path names in the schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'p> {
    pub container: Container,
    pub attr: &'static AttrDef,
    pub sub: Sub<'p>,
}

/// The sub-attribute part of a [`Target`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sub<'p> {
    None,
    Known(&'static AttrDef),
    /// A sub-attribute of an attribute whose sub-attributes are not listed: the operator's
    /// `customFields.<name>`, or e.g. `addresses.streetAddress`, accepted and not stored.
    Open(&'p str),
}

/// Complex attributes with no listed sub-attributes take any sub-attribute name.
pub(crate) fn is_open(attr: &AttrDef) -> bool {
    attr.kind == Kind::Complex && attr.sub.is_empty()
}

/// Multi-valued in practice. The complex attributes rollcall ignores (addresses, ims,
/// roles…) are multi-valued in RFC 7643 though the schema table does not say so.
pub(crate) fn is_multi(attr: &AttrDef) -> bool {
    attr.multi_valued || (attr.kind == Kind::Complex && !attr.stored)
}

/// Resolve a path like `UserSchema::resolve`, also accepting any sub-attribute of an open
/// attribute (see [`is_open`]).
pub(crate) fn resolve<'p>(schema: &UserSchema, path: &'p AttrPath) -> Option<Target<'p>> {
    let (container, attr) = schema.find(path.urn.as_deref(), &path.name)?;
    let sub = match path.sub.as_deref() {
        None => Sub::None,
        Some(name) => match attr.sub_attr(name) {
            Some(def) => Sub::Known(def),
            None if is_open(attr) => Sub::Open(name),
            None => return None,
        },
    };
    Some(Target {
        container,
        attr,
        sub,
    })
}

/// How values at a path compare.
#[derive(Clone, Copy, Debug)]
struct Semantics {
    kind: Kind,
    case_exact: bool,
}

const OPEN_STRING: Semantics = Semantics {
    kind: Kind::String,
    case_exact: false,
};

fn def_semantics(def: &AttrDef) -> Semantics {
    Semantics {
        kind: def.kind,
        case_exact: def.case_exact,
    }
}

/// Whether a comparison of the attribute itself compares its `value`: the elements of a
/// multi-valued one (`emails eq "x"`), and a complex one that has a value (`manager eq "id"`,
/// which Entra ID sends to check a manager: RFC 7643 §4.3's `manager.value`).
fn compares_value(attr: &AttrDef) -> bool {
    attr.kind == Kind::Complex && (is_multi(attr) || attr.sub_attr("value").is_some())
}

/// `emails eq "x"` compares the elements' `value`, so it takes the `value` semantics.
fn semantics(attr: &'static AttrDef, sub: Sub) -> Semantics {
    match sub {
        Sub::Known(def) => def_semantics(def),
        Sub::Open(_) => OPEN_STRING,
        Sub::None if compares_value(attr) => {
            attr.sub_attr("value").map_or(OPEN_STRING, def_semantics)
        }
        Sub::None => def_semantics(attr),
    }
}

/// A path inside a value filter: a plain name, relative to the element.
fn element_sub<'p>(parent: &'static AttrDef, path: &'p AttrPath) -> Option<(&'p str, Semantics)> {
    if path.urn.is_some() || path.sub.is_some() {
        return None;
    }
    match parent.sub_attr(&path.name) {
        Some(def) => Some((def.name, def_semantics(def))),
        None if is_open(parent) => Some((&path.name, OPEN_STRING)),
        None => None,
    }
}

/// Where paths are resolved: against the resource, or against one element of a multi-valued
/// attribute (inside `[...]`).
#[derive(Clone, Copy)]
enum Scope<'s> {
    Resource(&'s UserSchema),
    Element(&'static AttrDef),
}

// ---------------------------------------------------------------------------------------------
// Checking

/// Check a parsed filter against the schema: every attribute exists, and no ordering
/// comparison is made on a boolean or complex attribute (RFC 7644 §3.4.2.2).
pub fn check(filter: &Filter, schema: &UserSchema) -> Result<(), ScimError> {
    check_in(filter, Scope::Resource(schema))
}

/// Check a value filter whose paths are sub-attributes of `parent`.
pub(crate) fn check_element(filter: &Filter, parent: &'static AttrDef) -> Result<(), ScimError> {
    check_in(filter, Scope::Element(parent))
}

fn check_in(filter: &Filter, scope: Scope) -> Result<(), ScimError> {
    match filter {
        Filter::And(all) | Filter::Or(all) => all.iter().try_for_each(|f| check_in(f, scope)),
        Filter::Not(inner) => check_in(inner, scope),
        Filter::Present { path, value_filter } => {
            check_operand(path, value_filter.as_deref(), scope).map(drop)
        }
        Filter::Compare {
            path,
            value_filter,
            op,
            ..
        } => {
            let kind = check_operand(path, value_filter.as_deref(), scope)?;
            if op.is_ordering() && matches!(kind, Kind::Boolean | Kind::Complex) {
                let what = if kind == Kind::Boolean {
                    "a boolean"
                } else {
                    "complex"
                };
                return Err(ScimError::invalid_filter(format!(
                    "'{}' is {what}: '{}' does not apply to it",
                    display_path(path),
                    op.as_str()
                )));
            }
            Ok(())
        }
        Filter::ValuePath { path, filter } => match scope {
            Scope::Resource(schema) => {
                let attr = value_path_attr(schema, path)?;
                check_in(filter, Scope::Element(attr))
            }
            Scope::Element(_) => Err(ScimError::invalid_filter(
                "a value filter cannot contain another one",
            )),
        },
    }
}

/// The attribute of `attr[...]`: it must exist and have sub-attributes.
fn value_path_attr(schema: &UserSchema, path: &AttrPath) -> Result<&'static AttrDef, ScimError> {
    let base = AttrPath {
        sub: None,
        ..path.clone()
    };
    let target = resolve(schema, &base).ok_or_else(|| unknown(path))?;
    if target.attr.kind != Kind::Complex {
        return Err(ScimError::invalid_filter(format!(
            "'{}' has no sub-attributes, so '[...]' does not apply to it",
            target.attr.name
        )));
    }
    Ok(target.attr)
}

fn unknown(path: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!(
        "unknown attribute '{}' in the filter",
        display_path(path)
    ))
}

/// Check the path of a comparison; the declared kind of what it names.
fn check_operand(
    path: &AttrPath,
    value_filter: Option<&Filter>,
    scope: Scope,
) -> Result<Kind, ScimError> {
    match scope {
        Scope::Resource(schema) => {
            if let Some(inner) = value_filter {
                check_in(inner, Scope::Element(value_path_attr(schema, path)?))?;
            }
            let target = resolve(schema, path).ok_or_else(|| unknown(path))?;
            Ok(match target.sub {
                Sub::Known(def) => def.kind,
                Sub::Open(_) => Kind::String,
                Sub::None => target.attr.kind,
            })
        }
        Scope::Element(parent) => {
            if value_filter.is_some() {
                return Err(ScimError::invalid_filter(
                    "a value filter cannot contain another one",
                ));
            }
            match element_sub(parent, path) {
                Some((_, semantics)) => Ok(semantics.kind),
                None => Err(ScimError::invalid_filter(format!(
                    "'{}' is not a sub-attribute of '{}' (in '{}[...]')",
                    display_path(path),
                    parent.name,
                    parent.name
                ))),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Whether a resource matches a filter. Attributes the schema does not know match nothing
/// ([`check`] reports them beforehand).
pub fn matches(filter: &Filter, resource: &Value, schema: &UserSchema) -> bool {
    eval(filter, resource, Scope::Resource(schema))
}

/// Whether one element of `parent` matches a value filter.
pub(crate) fn matches_element(filter: &Filter, element: &Value, parent: &'static AttrDef) -> bool {
    eval(filter, element, Scope::Element(parent))
}

fn eval(filter: &Filter, target: &Value, scope: Scope) -> bool {
    match filter {
        Filter::And(all) => all.iter().all(|f| eval(f, target, scope)),
        Filter::Or(any) => any.iter().any(|f| eval(f, target, scope)),
        Filter::Not(inner) => !eval(inner, target, scope),
        Filter::Present { path, value_filter } => {
            operand_values(target, path, value_filter.as_deref(), scope, false)
                .is_some_and(|(values, _)| values.into_iter().any(is_present))
        }
        Filter::Compare {
            path,
            value_filter,
            op,
            value,
        } => operand_values(target, path, value_filter.as_deref(), scope, true)
            .is_some_and(|(values, semantics)| compare_any(&values, *op, value, semantics)),
        Filter::ValuePath { path, filter } => match scope {
            Scope::Resource(schema) => resolve(schema, path).is_some_and(|t| {
                elements(attr_value(target, t.container, t.attr, schema))
                    .iter()
                    .any(|e| eval(filter, e, Scope::Element(t.attr)))
            }),
            Scope::Element(_) => false,
        },
    }
}

/// The values a path names in `target` (several for a multi-valued attribute), and how they
/// compare. `None` when the path names nothing in the schema.
fn operand_values<'v>(
    target: &'v Value,
    path: &AttrPath,
    value_filter: Option<&Filter>,
    scope: Scope,
    comparing: bool,
) -> Option<(Vec<&'v Value>, Semantics)> {
    match scope {
        Scope::Resource(schema) => {
            let t = resolve(schema, path)?;
            let value = attr_value(target, t.container, t.attr, schema);
            let mut out = Vec::new();
            for element in elements(value) {
                if value_filter.is_some_and(|f| !eval(f, element, Scope::Element(t.attr))) {
                    continue;
                }
                let picked = match t.sub {
                    Sub::Known(def) => get_ci(element, def.name),
                    Sub::Open(name) => get_ci(element, name),
                    // `emails eq "x"` compares each element's value; `emails pr` the elements.
                    Sub::None if comparing && compares_value(t.attr) => get_ci(element, "value"),
                    Sub::None => Some(element),
                };
                out.extend(picked);
            }
            Some((out, semantics(t.attr, t.sub)))
        }
        Scope::Element(parent) => {
            if value_filter.is_some() {
                return None;
            }
            let (name, semantics) = element_sub(parent, path)?;
            Some((get_ci(target, name).into_iter().collect(), semantics))
        }
    }
}

/// The value of an attribute in a resource: top level, or in its extension's object.
fn attr_value<'v>(
    resource: &'v Value,
    container: Container,
    attr: &AttrDef,
    schema: &UserSchema,
) -> Option<&'v Value> {
    let holder = match container {
        Container::Core => resource,
        other => get_ci(resource, schema.urn(other))?,
    };
    get_ci(holder, attr.name)
}

/// The elements of a value: an array's items, or the value itself.
fn elements(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        Some(value) => std::slice::from_ref(value),
        None => &[],
    }
}

/// A key of an object, matched without regard to letter case (incoming data may differ).
pub(crate) fn get_ci<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    crate::resource::get_ci(value.as_object()?, name)
}

/// `pr`: not null, not "", not an empty array or object.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// "true" or "false" in any letter case: Entra sends booleans as strings.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A comparison over all the values of an operand: true if any value satisfies it; `ne` is
/// true if none is equal; `eq null` is true if none is present.
fn compare_any(
    values: &[&Value],
    op: CompareOp,
    literal: &CompValue,
    semantics: Semantics,
) -> bool {
    match (op, literal) {
        (CompareOp::Eq, CompValue::Null) => !values.iter().any(|v| is_present(v)),
        (CompareOp::Ne, CompValue::Null) => values.iter().any(|v| is_present(v)),
        (_, CompValue::Null) => false,
        (CompareOp::Ne, _) => !values
            .iter()
            .any(|v| compare_one(v, CompareOp::Eq, literal, semantics)),
        _ => values
            .iter()
            .any(|v| compare_one(v, op, literal, semantics)),
    }
}

/// One value against the literal. Values of different types never match.
fn compare_one(actual: &Value, op: CompareOp, literal: &CompValue, semantics: Semantics) -> bool {
    match (actual, literal) {
        (Value::String(a), CompValue::String(b)) => compare_strings(a, op, b, semantics),
        (Value::String(a), CompValue::Number { text, .. }) => {
            compare_strings(a, op, text, semantics)
        }
        (Value::String(a), CompValue::Bool(b)) => op == CompareOp::Eq && parse_bool(a) == Some(*b),
        (Value::Bool(a), CompValue::Bool(b)) => op == CompareOp::Eq && a == b,
        (Value::Bool(a), CompValue::String(b)) => op == CompareOp::Eq && parse_bool(b) == Some(*a),
        (Value::Number(a), CompValue::Number { number, .. }) => {
            compare_numbers(a, number).is_some_and(|order| holds(op, order))
        }
        _ => false,
    }
}

/// Whether an ordering satisfies `op` (`co`, `sw`, `ew` are not orderings).
fn holds(op: CompareOp, order: Ordering) -> bool {
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Ge => order != Ordering::Less,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Le => order != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_strings(actual: &str, op: CompareOp, literal: &str, semantics: Semantics) -> bool {
    // Timestamps compare as instants, so that offsets and fractions do not matter; text that
    // is not RFC 3339 falls back to comparing as a string.
    if semantics.kind == Kind::DateTime
        && !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
        && let (Ok(a), Ok(b)) = (
            DateTime::parse_from_rfc3339(actual),
            DateTime::parse_from_rfc3339(literal),
        )
    {
        return holds(op, a.cmp(&b));
    }
    let (a, b): (Cow<str>, Cow<str>) = if semantics.case_exact {
        (actual.into(), literal.into())
    } else {
        (actual.to_lowercase().into(), literal.to_lowercase().into())
    };
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        _ => holds(op, a.cmp(&b)),
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

// ---------------------------------------------------------------------------------------------
// Indexed lookups

/// The whole filter is an equality on an indexed attribute with a string (quoted or bare):
/// the store can answer it with one lookup. `emails[type eq "work"]…` counts, since the work
/// address is the only one rollcall stores.
pub fn simple_eq(filter: &Filter) -> Option<(IndexedAttr, String)> {
    match filter {
        Filter::Compare {
            path,
            value_filter,
            op: CompareOp::Eq,
            value,
        } => {
            let attr = indexed(path)?;
            let exact = match value_filter {
                None => true,
                Some(inner) => attr == IndexedAttr::Email && is_work_type(inner),
            };
            exact.then_some((attr, eq_text(value)?))
        }
        Filter::ValuePath { path, filter } if is_emails(path) => {
            let value = match &**filter {
                Filter::And(both) => match both.as_slice() {
                    [a, b] if is_work_type(a) => value_eq(b),
                    [a, b] if is_work_type(b) => value_eq(a),
                    _ => None,
                },
                single => value_eq(single),
            };
            Some((IndexedAttr::Email, value?))
        }
        _ => None,
    }
}

/// Some conjunct of the top-level `and` chain is an equality on an indexed attribute: the
/// store narrows the candidates by it, and [`matches`] then checks the whole filter.
pub fn indexable_conjunct(filter: &Filter) -> Option<(IndexedAttr, String)> {
    let mut conjuncts = Vec::new();
    flatten_and(filter, &mut conjuncts);
    conjuncts
        .into_iter()
        .find_map(|f| simple_eq(f).or_else(|| email_narrowing(f)))
}

/// The conjuncts of an `and` chain, nested chains included.
pub(crate) fn flatten_and<'f>(filter: &'f Filter, out: &mut Vec<&'f Filter>) {
    match filter {
        Filter::And(all) => all.iter().for_each(|f| flatten_and(f, out)),
        other => out.push(other),
    }
}

/// An email equality under any value filter: a superset of the matches.
fn email_narrowing(filter: &Filter) -> Option<(IndexedAttr, String)> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
            ..
        } if indexed(path) == Some(IndexedAttr::Email) => {
            Some((IndexedAttr::Email, eq_text(value)?))
        }
        Filter::ValuePath { path, filter } if is_emails(path) => {
            let mut conjuncts = Vec::new();
            flatten_and(filter, &mut conjuncts);
            let value = conjuncts.into_iter().find_map(value_eq)?;
            Some((IndexedAttr::Email, value))
        }
        _ => None,
    }
}

fn indexed(path: &AttrPath) -> Option<IndexedAttr> {
    let in_schema = |urn: &str| {
        path.urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(urn))
    };
    let name = |n: &str| path.name.eq_ignore_ascii_case(n);
    let plain = path.sub.is_none();
    if in_schema(CORE_USER) {
        if plain && name("id") {
            return Some(IndexedAttr::Id);
        }
        if plain && name("userName") {
            return Some(IndexedAttr::UserName);
        }
        if plain && name("externalId") {
            return Some(IndexedAttr::ExternalId);
        }
        if name("emails")
            && path
                .sub
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("value"))
        {
            return Some(IndexedAttr::Email);
        }
    }
    (in_schema(ENTERPRISE_USER) && plain && name("employeeNumber"))
        .then_some(IndexedAttr::EmployeeNumber)
}

fn is_emails(path: &AttrPath) -> bool {
    path.sub.is_none() && indexed(path) == Some(IndexedAttr::Email)
}

/// The text of a literal usable for a lookup.
fn eq_text(value: &CompValue) -> Option<String> {
    match value {
        CompValue::String(s) => Some(s.clone()),
        CompValue::Number { text, .. } => Some(text.clone()),
        CompValue::Null | CompValue::Bool(_) => None,
    }
}

/// `<name> eq <literal>` inside a value filter, the name in any letter case.
fn element_eq<'f>(filter: &'f Filter, name: &str) -> Option<&'f CompValue> {
    match filter {
        Filter::Compare {
            path,
            value_filter: None,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub.is_none() && path.name.eq_ignore_ascii_case(name) => {
            Some(value)
        }
        _ => None,
    }
}

fn value_eq(filter: &Filter) -> Option<String> {
    eq_text(element_eq(filter, "value")?)
}

fn is_work_type(filter: &Filter) -> bool {
    matches!(element_eq(filter, "type"), Some(CompValue::String(t)) if t.eq_ignore_ascii_case("work"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::DEFAULT_CUSTOM_URN;
    use serde_json::json;

    fn ann() -> Value {
        json!({
            "schemas": [CORE_USER, ENTERPRISE_USER, DEFAULT_CUSTOM_URN],
            "id": "0190aBc",
            "externalId": "e1",
            "userName": "Ann@Example.com",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "title": "Engineer",
            "active": true,
            "emails": [{"value": "ann@example.com", "type": "work", "primary": true}],
            "phoneNumbers": [
                {"value": "+44 7700 900123", "type": "mobile"},
                {"value": "+44 20 7946 0000", "type": "work"}
            ],
            ENTERPRISE_USER: {
                "employeeNumber": "701",
                "department": "R&D",
                "manager": {"value": "0190Boss"}
            },
            DEFAULT_CUSTOM_URN: {
                "company": "Acme",
                "location": "London",
                "startEmploymentDate": "2024-01-02",
                "customFields": {"costCentre": "C1"}
            },
            "meta": {
                "resourceType": "User",
                "created": "2024-01-02T03:04:05Z",
                "lastModified": "2024-06-01T10:00:00.5+02:00",
                "location": "http://h/scim/v2/Users/0190aBc",
                "version": "W/\"3\""
            }
        })
    }

    fn parse(text: &str) -> Filter {
        parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Parse, check and evaluate against Ann.
    fn on_ann(text: &str) -> bool {
        let schema = UserSchema::default();
        let filter = parse(text);
        check(&filter, &schema).unwrap_or_else(|e| panic!("{text}: {e}"));
        matches(&filter, &ann(), &schema)
    }

    fn parse_err(text: &str) -> ScimError {
        let err = parse_filter(text).expect_err(text);
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{text}");
        assert_eq!(err.status, 400);
        err
    }

    fn check_err(text: &str) -> String {
        let err = check(&parse(text), &UserSchema::default()).expect_err(text);
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        err.detail
    }

    fn cmp(name: &str, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare {
            path: AttrPath::parse(name),
            value_filter: None,
            op,
            value,
        }
    }

    fn s(text: &str) -> CompValue {
        CompValue::String(text.into())
    }

    // --- grammar ---

    #[test]
    fn a_comparison_parses_into_path_operator_and_value() {
        assert_eq!(
            parse(r#"userName eq "bjensen""#),
            cmp("userName", CompareOp::Eq, s("bjensen"))
        );
        assert_eq!(
            parse("title pr"),
            Filter::Present {
                path: AttrPath::parse("title"),
                value_filter: None
            }
        );
    }

    #[test]
    fn every_operator_parses_in_any_letter_case() {
        for (word, op) in [
            ("eq", CompareOp::Eq),
            ("NE", CompareOp::Ne),
            ("Co", CompareOp::Co),
            ("sW", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("GT", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("Lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            assert_eq!(
                parse(&format!(r#"title {word} "x""#)),
                cmp("title", op, s("x"))
            );
        }
        assert!(matches!(parse("title PR"), Filter::Present { .. }));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let a = cmp("title", CompareOp::Eq, s("a"));
        let b = cmp("title", CompareOp::Eq, s("b"));
        let c = cmp("title", CompareOp::Eq, s("c"));
        assert_eq!(
            parse(r#"title eq "a" or title eq "b" and title eq "c""#),
            Filter::Or(vec![a.clone(), Filter::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(
            parse(r#"title eq "a" AND title eq "b" Or title eq "c""#),
            Filter::Or(vec![Filter::And(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(
            parse(r#"(title eq "a" or title eq "b") and title eq "c""#),
            Filter::And(vec![Filter::Or(vec![a.clone(), b.clone()]), c.clone()])
        );
        // An and/or chain is one node, not a nesting.
        assert_eq!(
            parse(r#"title eq "a" and title eq "b" and title eq "c""#),
            Filter::And(vec![a, b, c])
        );
    }

    #[test]
    fn not_negates_a_group_and_binds_tightest() {
        let a = cmp("title", CompareOp::Eq, s("a"));
        let b = cmp("title", CompareOp::Eq, s("b"));
        assert_eq!(
            parse(r#"not (title eq "a") and title eq "b""#),
            Filter::And(vec![Filter::Not(Box::new(a.clone())), b.clone()])
        );
        assert_eq!(
            parse(r#"NOT(title eq "a")"#),
            Filter::Not(Box::new(a.clone()))
        );
        // Lenient: without parentheses.
        assert_eq!(parse(r#"not title eq "a""#), Filter::Not(Box::new(a)));
        assert!(!on_ann(r#"not (userName eq "ann@example.com")"#));
        assert!(on_ann(r#"not (userName eq "bob@example.com")"#));
        assert!(on_ann(r#"not (title pr and active eq false)"#));
    }

    #[test]
    fn whitespace_is_lenient() {
        let expected = Filter::And(vec![
            cmp("title", CompareOp::Eq, s("a")),
            cmp("active", CompareOp::Eq, CompValue::Bool(true)),
        ]);
        assert_eq!(
            parse(" \ttitle   eq\t\"a\"  and  active eq true \n"),
            expected
        );
        assert_eq!(parse(r#"(  title eq "a"and active eq true )"#), expected);
        assert_eq!(parse(r#"title eq"a" and active eq true"#), expected);
    }

    #[test]
    fn strings_take_json_escapes() {
        let value = |text: &str| match parse(&format!("title eq {text}")) {
            Filter::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            value(r#""a\"b\\c\/d\b\f\n\r\te""#),
            s("a\"b\\c/d\u{8}\u{c}\n\r\te")
        );
        assert_eq!(value(r#""caf\u00e9 \u65E5""#), s("café 日"));
        assert_eq!(value(r#""\ud83e\udd80""#), s("🦀"));
        assert_eq!(value(r#""日本 🦀""#), s("日本 🦀"));
        assert_eq!(value(r#""""#), s(""));
        for bad in [
            r#"title eq "\x""#,
            r#"title eq "\u12""#,
            r#"title eq "\ud83e""#,
            r#"title eq "\ud83e\u0041""#,
            r#"title eq "\udd80""#,
            r#"title eq "open"#,
            r#"title eq "\"#,
        ] {
            parse_err(bad);
        }
    }

    #[test]
    fn literals_and_numbers() {
        let value = |text: &str| match parse(&format!("title eq {text}")) {
            Filter::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(value("true"), CompValue::Bool(true));
        assert_eq!(value("false"), CompValue::Bool(false));
        assert_eq!(value("null"), CompValue::Null);
        assert!(matches!(value("-12.5e3"), CompValue::Number { text, .. } if text == "-12.5e3"));
        assert!(
            matches!(value("1234"), CompValue::Number { number, .. } if number.as_i64() == Some(1234))
        );
        // Not JSON numbers: bare strings.
        assert_eq!(value("00123"), s("00123"));
        assert_eq!(value("1e999"), s("1e999"));
        assert_eq!(value("True"), s("True"));
    }

    #[test]
    fn unquoted_values_are_strings_up_to_whitespace_or_a_bracket() {
        assert_eq!(
            parse("userName eq Test_User_abc"),
            cmp("userName", CompareOp::Eq, s("Test_User_abc"))
        );
        assert_eq!(
            parse("(userName eq a@b.c)"),
            cmp("userName", CompareOp::Eq, s("a@b.c"))
        );
        assert!(on_ann("userName eq ann@example.com"));
        assert!(on_ann("emails[type eq work]"));
        assert!(on_ann("externalId eq e1 and title eq Engineer"));
        // Entra's numeric externalId.
        let mut bob = ann();
        bob["externalId"] = json!("1234");
        let schema = UserSchema::default();
        assert!(matches(&parse("externalId eq 1234"), &bob, &schema));
        assert!(!matches(&parse("externalId eq 12345"), &bob, &schema));
    }

    #[test]
    fn urn_prefixed_paths_parse_and_match() {
        let f = parse(&format!("{ENTERPRISE_USER}:employeeNumber eq \"701\""));
        let Filter::Compare { path, .. } = &f else {
            panic!("{f:?}")
        };
        assert_eq!(path.urn.as_deref(), Some(ENTERPRISE_USER));
        assert_eq!(path.name, "employeeNumber");
        assert!(on_ann(&format!(
            "{ENTERPRISE_USER}:employeeNumber eq \"701\""
        )));
        assert!(on_ann(&format!(
            "{ENTERPRISE_USER}:manager.value eq \"0190Boss\""
        )));
        assert!(on_ann(&format!("{CORE_USER}:userName sw \"ann\"")));
        assert!(on_ann(&format!("{DEFAULT_CUSTOM_URN}:company eq \"acme\"")));
        assert!(on_ann("employeeNumber eq \"701\""));
        assert!(!on_ann("employeeNumber eq \"702\""));
    }

    #[test]
    fn value_paths_parse_with_and_without_a_trailing_sub_attribute() {
        let f = parse(r#"emails[type eq "work" and value co "@x"]"#);
        let Filter::ValuePath { path, filter } = &f else {
            panic!("{f:?}")
        };
        assert_eq!(path.name, "emails");
        assert!(matches!(**filter, Filter::And(ref all) if all.len() == 2));

        let f = parse(r#"emails[type eq "work"].value eq "a@b.c""#);
        let Filter::Compare {
            path,
            value_filter: Some(inner),
            op: CompareOp::Eq,
            value,
        } = &f
        else {
            panic!("{f:?}")
        };
        assert_eq!(
            (path.name.as_str(), path.sub.as_deref()),
            ("emails", Some("value"))
        );
        assert_eq!(**inner, cmp("type", CompareOp::Eq, s("work")));
        assert_eq!(*value, s("a@b.c"));
        assert!(matches!(
            parse(r#"emails[type eq "work"].value pr"#),
            Filter::Present {
                value_filter: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn syntax_errors_say_where_and_what_was_expected() {
        let detail = parse_err(r#"userName xx "a""#).detail;
        assert!(detail.contains("character 10"), "{detail}");
        assert!(detail.contains("expected an operator"), "{detail}");
        assert!(detail.contains("'xx'"), "{detail}");

        let detail = parse_err(r#"userName eq"#).detail;
        assert!(detail.contains("expected a value"), "{detail}");
        assert!(detail.contains("the end of the filter"), "{detail}");

        let detail = parse_err(r#"(title pr"#).detail;
        assert!(
            detail.contains("')' to close the '(' at character 1"),
            "{detail}"
        );

        let detail = parse_err(r#"title pr)"#).detail;
        assert!(
            detail.contains("character 9") && detail.contains("without a matching"),
            "{detail}"
        );

        let detail = parse_err(r#"title pr title pr"#).detail;
        assert!(detail.contains("'and', 'or' or the end"), "{detail}");

        let detail = parse_err(r#"日本 eq "x""#).detail;
        assert!(
            detail.contains("character 1") && detail.contains("'日本'"),
            "{detail}"
        );

        let detail = parse_err(r#"title eq "x" and é pr"#).detail;
        assert!(detail.contains("character 18"), "{detail}");

        assert_eq!(parse_err("   ").detail, "the filter is empty");
        for bad in [
            "title",
            "title eq",
            "title pr and",
            "or title pr",
            "title[value eq \"x\"",
            "emails[type eq \"work\"]]",
            "emails[type eq \"work\"].",
            "emails[type eq \"work\"].value",
            "emails.value[type eq \"work\"]",
            "emails[type[value pr]]",
            "name..givenName pr",
            "name.given.name pr",
            "1abc pr",
            "ti$tle pr",
            "foo:bar pr",
            "urn:x: pr",
            "title eq )",
            "title prx",
            "title eqx \"a\"",
            "not",
            "()",
        ] {
            parse_err(bad);
        }
    }

    #[test]
    fn length_is_limited() {
        let ok = format!("title eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 11));
        assert_eq!(ok.chars().count(), MAX_FILTER_LEN);
        parse(&ok);
        let long = format!("title eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 10));
        assert!(parse_err(&long).detail.contains("at most 4096"));
        // Characters, not bytes.
        let wide = format!("title eq \"{}\"", "é".repeat(MAX_FILTER_LEN - 11));
        parse(&wide);
    }

    #[test]
    fn nesting_is_limited_without_overflowing_the_stack() {
        let nested = |n: usize| format!("{}title pr{}", "(".repeat(n), ")".repeat(n));
        parse(&nested(MAX_FILTER_DEPTH));
        assert!(
            parse_err(&nested(MAX_FILTER_DEPTH + 1))
                .detail
                .contains("nested more than 16")
        );
        // `not (…)` is one level.
        parse(&format!("{}(title pr)", "not ".repeat(MAX_FILTER_DEPTH)));
        parse_err(&format!(
            "{}(title pr)",
            "not ".repeat(MAX_FILTER_DEPTH + 1)
        ));
        parse(&format!(
            "{}emails[type pr]{}",
            "(".repeat(MAX_FILTER_DEPTH - 1),
            ")".repeat(MAX_FILTER_DEPTH - 1)
        ));
        parse_err(&format!(
            "{}emails[type pr]{}",
            "(".repeat(MAX_FILTER_DEPTH),
            ")".repeat(MAX_FILTER_DEPTH)
        ));
        // Far beyond the limit, within and beyond the length limit.
        assert!(parse_err(&"(".repeat(4000)).detail.contains("nested"));
        assert!(parse_err(&"not (".repeat(800)).detail.contains("nested"));
        assert!(parse_err(&"not ".repeat(1000)).detail.contains("nested"));
        parse_err(&"(".repeat(10_000));
        parse_err(&"emails[".repeat(500));
        parse_err(&"[".repeat(3000));
        // Long flat chains are fine: they do not nest.
        let chain = vec!["title pr"; 300].join(" and ");
        assert!(matches!(parse(&chain), Filter::And(all) if all.len() == 300));
    }

    /// A xorshift generator: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// A random filter that is mostly well formed.
    fn random_filter(rng: &mut Rng, depth: usize) -> String {
        const PATHS: &[&str] = &[
            "userName",
            "emails",
            "emails.value",
            "emails.type",
            "phoneNumbers.value",
            "name.givenName",
            "meta.created",
            "active",
            "customFields.x",
            "employeeNumber",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "shoe",
            "title",
            "id",
            "externalId",
            "name",
        ];
        const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"];
        const VALUES: &[&str] = &[
            "\"ann@example.com\"",
            "true",
            "null",
            "5",
            "\"2024-01-02T03:04:05Z\"",
            "bare_word",
            "\"\"",
            "\"日本\"",
            "\"Engineer\"",
            "\"work\"",
        ];
        let comparison = |rng: &mut Rng, paths: &[&str]| {
            let (path, op) = (rng.pick(paths), rng.pick(OPS));
            if op == "pr" {
                format!("{path} pr")
            } else {
                format!("{path} {op} {}", rng.pick(VALUES))
            }
        };
        let deeper = depth < 4;
        match rng.below(7) {
            0 if deeper => format!("({})", random_filter(rng, depth + 1)),
            1 if deeper => format!(
                "{} and {}",
                random_filter(rng, depth + 1),
                random_filter(rng, depth + 1)
            ),
            2 if deeper => format!(
                "{} OR {}",
                random_filter(rng, depth + 1),
                random_filter(rng, depth + 1)
            ),
            3 if deeper => format!("not ({})", random_filter(rng, depth + 1)),
            4 => {
                let attr = rng.pick(&["emails", "phoneNumbers", "addresses", "title"]);
                let inner = comparison(rng, &["value", "type", "primary", "shoe"]);
                match rng.below(3) {
                    0 => format!(
                        "{attr}[{inner}].value {}",
                        comparison(rng, &[""]).trim_start()
                    ),
                    _ => format!("{attr}[{inner}]"),
                }
            }
            _ => comparison(rng, PATHS),
        }
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        const PIECES: &[&str] = &[
            "userName",
            "emails",
            "name",
            "meta",
            "value",
            "type",
            "$ref",
            "customFields",
            ENTERPRISE_USER,
            ":",
            ".",
            "[",
            "]",
            "(",
            ")",
            " ",
            "\t",
            "\"",
            "\\",
            "\\u",
            "d83d",
            "dc00",
            "eq",
            "ne",
            "co",
            "gt",
            "pr",
            "and",
            "or",
            "not",
            "true",
            "null",
            "1",
            "-",
            "e",
            "é",
            "日本",
            "🦀",
            "\u{0}",
            "\u{a0}",
            "x",
            "'",
            "/",
            "urn:",
            "0190",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let schema = UserSchema::default();
        let odd = json!({"userName": 5, "name": "Ann", "emails": "x", "phoneNumbers": [1, null, {"value": []}],
            ENTERPRISE_USER: [], "meta": {"created": 7}, "active": "yes"});
        let resources = [ann(), odd, json!(null), json!([])];
        let mut parsed = 0;
        for round in 0..20_000 {
            let text: String = match round % 4 {
                // Raw characters, many of them multi-byte.
                0 => (0..rng.below(40))
                    .map(|_| char::from_u32(rng.below(0x1_0000) as u32).unwrap_or('?'))
                    .collect(),
                1 => (0..rng.below(24)).map(|_| rng.pick(PIECES)).collect(),
                // Mostly well-formed filters, some with one character dropped or a piece added.
                _ => {
                    let mut chars: Vec<char> = random_filter(&mut rng, 0).chars().collect();
                    let at = rng.below(chars.len() + 1);
                    match rng.below(3) {
                        0 if at < chars.len() => {
                            chars.remove(at);
                        }
                        1 => chars
                            .splice(at..at, rng.pick(PIECES).chars())
                            .for_each(drop),
                        _ => {}
                    }
                    chars.into_iter().collect()
                }
            };
            if let Ok(filter) = parse_filter(&text) {
                parsed += 1;
                let _ = check(&filter, &schema);
                for resource in &resources {
                    let _ = matches(&filter, resource, &schema);
                }
                let _ = simple_eq(&filter);
                let _ = indexable_conjunct(&filter);
            }
            let _ = parse_path(&text);
        }
        // Enough inputs get through the parser to exercise evaluation too.
        assert!(parsed > 3_000, "{parsed}");
    }

    // --- evaluation ---

    #[test]
    fn user_name_ignores_case_and_external_id_and_id_do_not() {
        assert!(on_ann(r#"userName eq "ann@example.com""#));
        assert!(on_ann(r#"USERNAME EQ "ANN@EXAMPLE.COM""#));
        assert!(on_ann(r#"externalId eq "e1""#));
        assert!(!on_ann(r#"externalId eq "E1""#));
        assert!(on_ann(r#"id eq "0190aBc""#));
        assert!(!on_ann(r#"id eq "0190abc""#));
        assert!(!on_ann(r#"manager.value eq "0190boss""#));
        // Entra ID checks a manager with `manager eq`: the manager's value (its id).
        assert!(on_ann(r#"manager eq "0190Boss""#));
        assert!(on_ann(r#"id eq "0190aBc" and manager eq "0190Boss""#));
        assert!(!on_ann(r#"manager eq "0190Other""#));
        assert!(on_ann(r#"emails.value eq "ANN@example.COM""#));
    }

    #[test]
    fn keys_are_found_in_any_letter_case() {
        let schema = UserSchema::default();
        let shouty = json!({
            "USERNAME": "ann",
            "Emails": [{"VALUE": "a@x.org", "Type": "work"}],
            ENTERPRISE_USER.to_uppercase(): {"EmployeeNumber": "7"}
        });
        for text in [
            r#"userName eq "ann""#,
            r#"emails[type eq "work"].value eq "a@x.org""#,
            r#"employeeNumber eq "7""#,
        ] {
            assert!(matches(&parse(text), &shouty, &schema), "{text}");
        }
    }

    #[test]
    fn multi_valued_attributes_match_if_any_element_does() {
        assert!(on_ann(r#"phoneNumbers.type eq "work""#));
        assert!(on_ann(r#"phoneNumbers.type eq "mobile""#));
        assert!(!on_ann(r#"phoneNumbers.type eq "home""#));
        assert!(on_ann(r#"phoneNumbers.value sw "+44 20""#));
        // Without a sub-attribute, the elements' value is compared.
        assert!(on_ann(r#"emails eq "ann@example.com""#));
        assert!(on_ann(r#"phoneNumbers co "7946""#));
        // ne: no element equal.
        assert!(!on_ann(r#"phoneNumbers.type ne "work""#));
        assert!(on_ann(r#"phoneNumbers.type ne "home""#));
        // Value filters select elements.
        assert!(on_ann(
            r#"phoneNumbers[type eq "work" and value co "7946"]"#
        ));
        assert!(!on_ann(
            r#"phoneNumbers[type eq "mobile" and value co "7946"]"#
        ));
        assert!(on_ann(r#"phoneNumbers[type eq "mobile"].value co "7700""#));
        assert!(!on_ann(r#"phoneNumbers[type eq "mobile"].value co "7946""#));
        assert!(on_ann(r#"phoneNumbers[type eq "work"].value ne "x""#));
        assert!(!on_ann(r#"phoneNumbers[type eq "home"].value pr"#));
        assert!(on_ann(r#"emails[not (type eq "home")]"#));
        assert!(on_ann(r#"emails[primary eq true]"#));
        assert!(on_ann(r#"emails[VALUE eq "ANN@EXAMPLE.COM"]"#));
    }

    #[test]
    fn present_means_a_value_that_is_not_empty() {
        assert!(on_ann("title pr"));
        assert!(on_ann("emails pr"));
        assert!(on_ann("name.givenName pr"));
        assert!(on_ann("manager pr"));
        assert!(!on_ann("name.formatted pr"));
        assert!(on_ann("department pr"));
        assert!(!on_ann("description pr"));
        let schema = UserSchema::default();
        let empty =
            json!({"title": "", "emails": [], "name": {}, "active": null, "phoneNumbers": [{}]});
        for text in [
            "title pr",
            "emails pr",
            "name pr",
            "active pr",
            "phoneNumbers pr",
            "emails.value pr",
        ] {
            assert!(!matches(&parse(text), &empty, &schema), "{text}");
        }
    }

    #[test]
    fn null_means_absent() {
        assert!(on_ann("description eq null"));
        assert!(!on_ann("description ne null"));
        assert!(on_ann("title ne null"));
        assert!(!on_ann("title eq null"));
        assert!(on_ann("emails.display eq null"));
        assert!(!on_ann("title gt null"));
        let schema = UserSchema::default();
        assert!(matches(
            &parse("title eq null"),
            &json!({"title": ""}),
            &schema
        ));
    }

    #[test]
    fn string_operators() {
        assert!(on_ann(r#"userName co "EXAMPLE""#));
        assert!(on_ann(r#"userName sw "ann@""#));
        assert!(on_ann(r#"userName ew ".COM""#));
        assert!(!on_ann(r#"userName ew "org""#));
        assert!(on_ann(r#"title gt "Architect""#));
        assert!(on_ann(r#"title ge "engineer""#));
        assert!(on_ann(r#"title le "ENGINEER""#));
        assert!(on_ann(r#"title lt "Manager""#));
        assert!(!on_ann(r#"title lt "Engineer""#));
        // Case-exact: "0190aBc" sorts before "0190abc".
        assert!(on_ann(r#"id lt "0190abc""#));
        assert!(!on_ann(r#"id co "ABC""#));
        assert!(on_ann(r#"name.familyName eq "LEE""#));
        assert!(on_ann(r#"title ne "Manager""#));
    }

    #[test]
    fn timestamps_compare_as_instants() {
        assert!(on_ann(r#"meta.created gt "2024-01-01T00:00:00Z""#));
        assert!(on_ann(r#"meta.created eq "2024-01-02T04:04:05+01:00""#));
        assert!(on_ann(r#"meta.created ge "2024-01-02T03:04:05.000Z""#));
        assert!(!on_ann(r#"meta.created lt "2024-01-02T03:04:05Z""#));
        // 10:00:00.5+02:00 is 08:00:00.5Z.
        assert!(on_ann(r#"meta.lastModified gt "2024-06-01T08:00:00Z""#));
        assert!(on_ann(r#"meta.lastModified lt "2024-06-01T09:00:00Z""#));
        assert!(on_ann(r#"meta.created sw "2024-01""#));
        assert!(on_ann(r#"meta.resourceType eq "user""#));
        // Not a timestamp: compared as text, without a panic.
        assert!(!on_ann(r#"meta.created eq "yesterday""#));
    }

    #[test]
    fn booleans_compare_with_booleans_or_their_names() {
        assert!(on_ann("active eq true"));
        assert!(!on_ann("active eq false"));
        assert!(on_ann("active ne false"));
        assert!(on_ann(r#"active eq "True""#));
        assert!(on_ann("active eq TRUE"));
        assert!(!on_ann(r#"active eq "yes""#));
        assert!(!on_ann(r#"active co "t""#));
    }

    #[test]
    fn different_types_do_not_match() {
        assert!(!on_ann("title eq true"));
        assert!(!on_ann("active eq 1"));
        assert!(!on_ann("name eq \"Ann\""));
        let schema = UserSchema::default();
        let numeric = json!({"title": 5});
        assert!(matches(&parse("title eq 5"), &numeric, &schema));
        assert!(matches(&parse("title gt 4.5"), &numeric, &schema));
        assert!(!matches(&parse("title eq \"5\""), &numeric, &schema));
        assert!(!matches(&parse("title co \"5\""), &numeric, &schema));
    }

    #[test]
    fn custom_fields_and_extensions() {
        assert!(on_ann(r#"customFields.costCentre eq "c1""#));
        assert!(on_ann(r#"customFields.COSTCENTRE eq "C1""#));
        assert!(!on_ann(r#"customFields.other pr"#));
        assert!(on_ann(r#"location eq "london""#));
        assert!(on_ann(r#"department eq "r&d""#));
        // Another deployment's URN names nothing here.
        let other = UserSchema::new("urn:acme:User");
        let filter = parse(&format!("{DEFAULT_CUSTOM_URN}:company eq \"Acme\""));
        assert!(check(&filter, &other).is_err());
        assert!(!matches(&filter, &ann(), &other));
    }

    #[test]
    fn check_names_unknown_attributes_and_refuses_ordering_on_booleans_and_complex() {
        assert!(check_err("shoeSize eq 42").contains("'shoeSize'"));
        assert!(check_err("name.shoe pr").contains("'name.shoe'"));
        assert!(check_err("urn:acme:x:User:title pr").contains("'urn:acme:x:User:title'"));
        assert!(check_err(r#"emails[shoe eq "x"]"#).contains("'shoe'"));
        assert!(check_err(r#"emails[type eq "work"].shoe eq "x""#).contains("'emails.shoe'"));
        assert!(check_err(r#"title[value eq "x"]"#).contains("no sub-attributes"));
        assert!(check_err(r#"shoes[value eq "x"]"#).contains("'shoes'"));
        assert!(check_err("active gt true").contains("boolean"));
        assert!(check_err("emails.primary le false").contains("boolean"));
        assert!(check_err(r#"emails[primary lt true]"#).contains("boolean"));
        assert!(check_err(r#"name ge "a""#).contains("complex"));
        assert!(check_err(r#"emails gt "a""#).contains("complex"));
        let schema = UserSchema::default();
        for ok in [
            r#"title gt "a""#,
            r#"meta.created lt "2025-01-01T00:00:00Z""#,
            r#"customFields.anything eq "x""#,
            r#"addresses[type eq "work"].streetAddress pr"#,
            r#"emails.value ge "a""#,
            "active eq true",
            "name pr",
            r#"manager.$ref pr"#,
        ] {
            check(&parse(ok), &schema).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    // --- indexed lookups ---

    #[test]
    fn simple_eq_recognises_equality_on_indexed_attributes() {
        let se = |text: &str| simple_eq(&parse(text));
        let some = |attr, value: &str| Some((attr, value.to_owned()));
        assert_eq!(se(r#"id eq "0190""#), some(IndexedAttr::Id, "0190"));
        assert_eq!(
            se(r#"userName eq "Ann@x.org""#),
            some(IndexedAttr::UserName, "Ann@x.org")
        );
        assert_eq!(
            se("userName Eq Test_User_abc"),
            some(IndexedAttr::UserName, "Test_User_abc")
        );
        assert_eq!(
            se(r#"externalId eq "e1""#),
            some(IndexedAttr::ExternalId, "e1")
        );
        assert_eq!(
            se("externalId eq 1234"),
            some(IndexedAttr::ExternalId, "1234")
        );
        assert_eq!(
            se(r#"emails.value eq "a@x.org""#),
            some(IndexedAttr::Email, "a@x.org")
        );
        assert_eq!(
            se(r#"emails eq "a@x.org""#),
            some(IndexedAttr::Email, "a@x.org")
        );
        assert_eq!(
            se(r#"emails[type eq "work"].value eq "a@x.org""#),
            some(IndexedAttr::Email, "a@x.org")
        );
        assert_eq!(
            se(r#"emails[value eq "a@x.org"]"#),
            some(IndexedAttr::Email, "a@x.org")
        );
        assert_eq!(
            se(r#"emails[type eq "Work" and value eq "a@x.org"]"#),
            some(IndexedAttr::Email, "a@x.org")
        );
        assert_eq!(
            se(r#"emails[value eq "a@x.org" and type eq "work"]"#),
            some(IndexedAttr::Email, "a@x.org")
        );
        assert_eq!(
            se(r#"employeeNumber eq "701""#),
            some(IndexedAttr::EmployeeNumber, "701")
        );
        assert_eq!(
            se(&format!("{ENTERPRISE_USER}:employeeNumber eq \"701\"")),
            some(IndexedAttr::EmployeeNumber, "701")
        );
        assert_eq!(
            se(&format!("{CORE_USER}:userName eq \"a\"")),
            some(IndexedAttr::UserName, "a")
        );
        for none in [
            r#"userName ne "a""#,
            r#"userName co "a""#,
            "userName eq null",
            "userName eq true",
            r#"title eq "a""#,
            r#"userName eq "a" and title eq "b""#,
            r#"userName eq "a" or userName eq "b""#,
            r#"not (userName eq "a")"#,
            r#"emails.type eq "work""#,
            r#"emails[type eq "home"].value eq "a@x.org""#,
            r#"emails[type eq "home" and value eq "a@x.org"]"#,
            r#"emails[type eq "work"]"#,
            r#"phoneNumbers.value eq "1""#,
            &format!("{ENTERPRISE_USER}:userName eq \"a\""),
            &format!("{CORE_USER}:employeeNumber eq \"a\""),
            r#"name.givenName eq "a""#,
        ] {
            assert_eq!(se(none), None, "{none}");
        }
    }

    #[test]
    fn indexable_conjunct_finds_an_equality_in_an_and_chain() {
        let ic = |text: &str| indexable_conjunct(&parse(text));
        assert_eq!(
            ic(r#"active eq true and userName eq "a""#),
            Some((IndexedAttr::UserName, "a".into()))
        );
        assert_eq!(
            ic(r#"(title pr and (externalId eq "e1")) and active eq true"#),
            Some((IndexedAttr::ExternalId, "e1".into()))
        );
        assert_eq!(
            ic(r#"title pr and emails[type eq "home" and value eq "a@x.org"]"#),
            Some((IndexedAttr::Email, "a@x.org".into()))
        );
        assert_eq!(
            ic(r#"emails[type eq "home"].value eq "a@x.org""#),
            Some((IndexedAttr::Email, "a@x.org".into()))
        );
        assert_eq!(ic(r#"id eq "x""#), Some((IndexedAttr::Id, "x".into())));
        assert_eq!(ic(r#"userName eq "a" or active eq true"#), None);
        assert_eq!(ic(r#"not (userName eq "a") and title pr"#), None);
        assert_eq!(ic(r#"title eq "a" and active eq true"#), None);
    }

    #[test]
    fn patch_paths_parse() {
        let (path, filter) = parse_path(r#"emails[type eq "work"].value"#).expect("path");
        assert_eq!(
            (path.name.as_str(), path.sub.as_deref()),
            ("emails", Some("value"))
        );
        assert_eq!(filter, Some(cmp("type", CompareOp::Eq, s("work"))));
        let (path, filter) =
            parse_path(&format!(" {ENTERPRISE_USER}:manager.value ")).expect("path");
        assert_eq!(path.urn.as_deref(), Some(ENTERPRISE_USER));
        assert_eq!(filter, None);
        for bad in [
            "",
            "emails[",
            "emails[type eq \"work\"] x",
            "a b",
            "emails.value[type eq \"x\"]",
            "é",
        ] {
            let err = parse_path(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{bad}");
        }
    }
}
