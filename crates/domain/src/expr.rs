//! Expressions of computed fields (SPEC §4): a field of a user computed from the columns of
//! one row of an HR file, e.g. `Status == "Leaver" ? "false" : "true"`.
//!
//! The language is small and safe: values, comparisons, and/or/not, if-then-else, `+ - * /`
//! and a few string functions. There are no loops, no variables and no I/O; evaluation is one
//! walk over a tree whose depth and size are bounded when it is parsed, and every string it
//! builds is capped at [`MAX_RESULT_LEN`] characters, so evaluation time is bounded too.
//!
//! # Grammar
//!
//! From lowest to highest precedence (`{ … }` repeats, `[ … ]` is optional):
//!
//! ```text
//! expr        = conditional
//! conditional = "if" or "then" conditional "else" conditional
//!             | or [ "?" conditional ":" conditional ]
//! or          = and { ( "or" | "||" ) and }
//! and         = not { ( "and" | "&&" ) not }
//! not         = ( "not" | "!" ) not | comparison
//! comparison  = sum [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) sum ]
//! sum         = product { ( "+" | "-" ) product }
//! product     = unary { ( "*" | "/" ) unary }
//! unary       = "-" unary | primary
//! primary     = number | string | "true" | "false" | call | column | "(" expr ")"
//! call        = function "(" [ expr { "," expr } ] ")"
//! column      = letter { letter | digit | "_" }        (ASCII; not a keyword)
//! number      = digit { digit } [ "." digit { digit } ]
//! string      = '"' { character | "\" ( '"' | "\" | "n" | "t" ) } '"'
//! ```
//!
//! - Keywords (`true false and or not if then else`) and function names are case-insensitive;
//!   column names are case-sensitive and written exactly as the header. A column whose name is
//!   a keyword cannot be referenced.
//! - `? :` is right-associative: `a ? x : b ? y : z` is `a ? x : (b ? y : z)`; `if … then …
//!   else if … then … else …` chains the same way. `!` is a synonym of `not` with the same
//!   (low) precedence: `!A == "x"` is `!(A == "x")`. Comparisons do not chain: `a < b < c` is
//!   an error.
//! - Spaces, tabs and line breaks separate tokens.
//!
//! # Values
//!
//! Values are strings, numbers (64-bit floating point) and booleans. A column gives the text
//! of its cell, or `""` when the column is absent or the row has no such cell.
//!
//! - Arithmetic (`+ - * /`, unary `-`) is numeric only: a string operand is used as a number
//!   when, trimmed, it is digits with an optional decimal part and an optional sign (`"10"`,
//!   `" -2.5 "`); anything else is an error. Use `concat(…)` to join strings.
//! - Comparisons are numeric when both sides are numbers or strings that read as numbers
//!   (`"10" > "9"`), otherwise they compare texts, case-sensitively, by Unicode code point
//!   (`lower(…)` compares case-insensitively). A boolean compares only with `==` / `!=`, and
//!   only with another boolean or a string reading `true` / `false`.
//! - Where a boolean is needed (`and`, `or`, `not`, conditions), a boolean is used as it is and
//!   a string reading `true` or `false` in any case (trimmed) as that boolean; anything else is
//!   an error. `and` / `or` short-circuit.
//! - A number becomes text as an integer without a decimal point when it is one (`5`), with up
//!   to 10 decimals, rounded and without trailing zeros, otherwise (`0.3333333333`); numbers of
//!   10^15 or more in size are written in scientific notation with up to 10 significant digits
//!   (`1.5e20`). A boolean becomes `true` or `false`.
//!
//! # Functions
//!
//! | function | result |
//! |---|---|
//! | `lower(s)`, `upper(s)` | `s` in lower / upper case |
//! | `trim(s)` | `s` without leading and trailing white space and zero-width characters (as every cell is trimmed) |
//! | `concat(a, b, …)` | the texts joined (1 to 16 arguments) |
//! | `len(s)` | the number of characters of `s` |
//! | `substr(s, start, length)` | `length` characters from `start` (0-based, whole numbers, clamped to `s`) |
//! | `replace(s, from, to)` | `s` with every `from` replaced by `to` (`s` itself when `from` is empty) |
//! | `coalesce(a, b, …)` | the first argument whose text is not empty after trimming, else `""` (1 to 16 arguments) |
//! | `contains(s, sub)`, `startswith(s, p)`, `endswith(s, p)` | whether `s` contains / starts with / ends with it (case-sensitive) |

use crate::values::clean;

/// Longest expression accepted, in characters.
pub const MAX_EXPR_LEN: usize = 2000;
/// Deepest nesting accepted: each `(`, function call, `not`, unary `-` and conditional branch
/// is one level.
pub const MAX_DEPTH: usize = 32;
/// Longest string an evaluation may produce or handle, in characters.
pub const MAX_RESULT_LEN: usize = 10_000;

/// Most arguments of a function taking a variable number of them.
const MAX_ARGS: usize = 16;

/// Why an expression was refused. The message says what to change; `position` is the 1-based
/// character index in the expression where the problem was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position})")]
pub struct ExprError {
    pub message: String,
    pub position: usize,
}

/// Why the evaluation of an expression over one row failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// A parsed, checked expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    root: Node,
    columns: Vec<String>,
}

impl Expr {
    /// Parse and check an expression. Refuses expressions longer than [`MAX_EXPR_LEN`]
    /// characters or nested deeper than [`MAX_DEPTH`], unknown functions, wrong numbers of
    /// arguments and syntax errors, each with a message an operator can act on.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let len = text.chars().count();
        if len > MAX_EXPR_LEN {
            return Err(error(
                MAX_EXPR_LEN + 1,
                format!(
                    "the expression is {len} characters long, more than the limit of {MAX_EXPR_LEN}: shorten it"
                ),
            ));
        }
        let tokens = lex(text)?;
        if tokens.len() == 1 {
            return Err(error(
                1,
                "the expression is empty: write a value, a column name or a formula",
            ));
        }
        let mut parser = Parser {
            tokens,
            next: 0,
            depth: 0,
            columns: Vec::new(),
        };
        let root = parser.conditional()?;
        let end = parser.peek();
        if end.tok != Tok::End {
            let message = match &end.tok {
                Tok::RParen => "unexpected ')': there is no '(' for it to close".to_owned(),
                other => format!(
                    "unexpected {} after a complete expression: join the parts with an operator such as 'and', '+' or '==', or with concat(…)",
                    describe(other)
                ),
            };
            return Err(error(end.pos, message));
        }
        let mut columns = parser.columns;
        columns.sort();
        columns.dedup();
        Ok(Expr { root, columns })
    }

    /// The column names the expression reads, sorted and without duplicates.
    pub fn columns(&self) -> Vec<String> {
        self.columns.clone()
    }

    /// Evaluate over one row. `cell(name)` gives the text of a column's cell; `None` (the
    /// column is absent or the row has no such cell) reads as `""`.
    pub fn eval(&self, cell: &dyn Fn(&str) -> Option<String>) -> Result<String, EvalError> {
        let value = eval(&self.root, cell)?;
        Ok(value.into_text())
    }
}

fn error(position: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        message: message.into(),
        position,
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl ArithOp {
    fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Lower,
    Upper,
    Trim,
    Concat,
    Len,
    Substr,
    Replace,
    Coalesce,
    Contains,
    StartsWith,
    EndsWith,
}

/// Name, function, fewest and most arguments, usage.
const FUNCTIONS: [(&str, Func, usize, usize, &str); 11] = [
    ("lower", Func::Lower, 1, 1, "lower(text)"),
    ("upper", Func::Upper, 1, 1, "upper(text)"),
    ("trim", Func::Trim, 1, 1, "trim(text)"),
    ("concat", Func::Concat, 1, MAX_ARGS, "concat(a, b, …)"),
    ("len", Func::Len, 1, 1, "len(text)"),
    ("substr", Func::Substr, 3, 3, "substr(text, start, length)"),
    ("replace", Func::Replace, 3, 3, "replace(text, from, to)"),
    ("coalesce", Func::Coalesce, 1, MAX_ARGS, "coalesce(a, b, …)"),
    ("contains", Func::Contains, 2, 2, "contains(text, part)"),
    (
        "startswith",
        Func::StartsWith,
        2,
        2,
        "startswith(text, prefix)",
    ),
    ("endswith", Func::EndsWith, 2, 2, "endswith(text, suffix)"),
];

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Str(String),
    Num(f64),
    Bool(bool),
    Column(String),
    Not(Box<Node>),
    Neg(Box<Node>),
    /// `first op₁ x₁ op₂ x₂ …`, evaluated left to right (all `+ -` or all `* /`).
    Arith(Box<Node>, Vec<(ArithOp, Node)>),
    Compare(CmpOp, Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// `if c₁ then v₁ else if c₂ then v₂ … else otherwise`; the word (`if` or `?`) names the
    /// condition in error messages.
    Cond(Vec<(&'static str, Node, Node)>, Box<Node>),
    Call(Func, Vec<Node>),
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    True,
    False,
    And,
    Or,
    Not,
    If,
    Then,
    Else,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word.to_ascii_lowercase().as_str() {
            "true" => Keyword::True,
            "false" => Keyword::False,
            "and" => Keyword::And,
            "or" => Keyword::Or,
            "not" => Keyword::Not,
            "if" => Keyword::If,
            "then" => Keyword::Then,
            "else" => Keyword::Else,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Keyword::True => "true",
            Keyword::False => "false",
            Keyword::And => "and",
            Keyword::Or => "or",
            Keyword::Not => "not",
            Keyword::If => "if",
            Keyword::Then => "then",
            Keyword::Else => "else",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Kw(Keyword),
    LParen,
    RParen,
    Comma,
    Question,
    Colon,
    Plus,
    Minus,
    Star,
    Slash,
    Cmp(CmpOp),
    AndAnd,
    OrOr,
    Bang,
    End,
}

#[derive(Clone, Debug, PartialEq)]
struct Token {
    tok: Tok,
    /// 1-based character index of the token's first character.
    pos: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(name) => format!("the name '{name}'"),
        Tok::Str(s) => format!("the string {}", quote(s)),
        Tok::Num(n) => format!("the number {}", format_number(*n)),
        Tok::Kw(k) => format!("'{}'", k.as_str()),
        Tok::LParen => "'('".to_owned(),
        Tok::RParen => "')'".to_owned(),
        Tok::Comma => "','".to_owned(),
        Tok::Question => "'?'".to_owned(),
        Tok::Colon => "':'".to_owned(),
        Tok::Plus => "'+'".to_owned(),
        Tok::Minus => "'-'".to_owned(),
        Tok::Star => "'*'".to_owned(),
        Tok::Slash => "'/'".to_owned(),
        Tok::Cmp(op) => format!("'{}'", op.as_str()),
        Tok::AndAnd => "'&&'".to_owned(),
        Tok::OrOr => "'||'".to_owned(),
        Tok::Bang => "'!'".to_owned(),
        Tok::End => "the end of the expression".to_owned(),
    }
}

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let pos = i + 1;
        let next = chars.get(i + 1).copied();
        let (tok, width) = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '?' => (Tok::Question, 1),
            ':' => (Tok::Colon, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' => (Tok::Star, 1),
            '/' => (Tok::Slash, 1),
            '=' if next == Some('=') => (Tok::Cmp(CmpOp::Eq), 2),
            '=' => {
                return Err(error(
                    pos,
                    "a single '=' is not an operator: use '==' to compare",
                ));
            }
            '!' if next == Some('=') => (Tok::Cmp(CmpOp::Ne), 2),
            '!' => (Tok::Bang, 1),
            '<' if next == Some('=') => (Tok::Cmp(CmpOp::Le), 2),
            '<' if next == Some('>') => {
                return Err(error(
                    pos,
                    "'<>' is not an operator: use '!=' for 'not equal'",
                ));
            }
            '<' => (Tok::Cmp(CmpOp::Lt), 1),
            '>' if next == Some('=') => (Tok::Cmp(CmpOp::Ge), 2),
            '>' => (Tok::Cmp(CmpOp::Gt), 1),
            '&' if next == Some('&') => (Tok::AndAnd, 2),
            '&' => {
                return Err(error(
                    pos,
                    "a single '&' is not an operator: use 'and' or '&&'",
                ));
            }
            '|' if next == Some('|') => (Tok::OrOr, 2),
            '|' => {
                return Err(error(
                    pos,
                    "a single '|' is not an operator: use 'or' or '||'",
                ));
            }
            '"' => lex_string(&chars, i)?,
            '0'..='9' => lex_number(&chars, i)?,
            c if c.is_ascii_alphabetic() => {
                let word: String = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                let width = word.len();
                match Keyword::from_word(&word) {
                    Some(k) => (Tok::Kw(k), width),
                    None => (Tok::Ident(word), width),
                }
            }
            '\'' => {
                return Err(error(
                    pos,
                    "strings are written in double quotes, e.g. \"Leaver\", not single quotes",
                ));
            }
            '\u{201C}' | '\u{201D}' | '\u{2018}' | '\u{2019}' => {
                return Err(error(
                    pos,
                    format!(
                        "typographic quote '{c}': write strings in straight double quotes, e.g. \"Leaver\""
                    ),
                ));
            }
            c if c.is_alphabetic() || c == '_' => {
                return Err(error(
                    pos,
                    format!(
                        "unexpected character '{c}': column names are ASCII letters, digits and '_', starting with a letter"
                    ),
                ));
            }
            c => {
                let shown = if c.is_control() || c.is_whitespace() {
                    format!("U+{:04X}", u32::from(c))
                } else {
                    format!("'{c}'")
                };
                return Err(error(pos, format!("unexpected character {shown}")));
            }
        };
        tokens.push(Token { tok, pos });
        i += width;
    }
    tokens.push(Token {
        tok: Tok::End,
        pos: chars.len() + 1,
    });
    Ok(tokens)
}

/// A string literal starting at `chars[start] == '"'`: the token and its width in characters.
fn lex_string(chars: &[char], start: usize) -> Result<(Tok, usize), ExprError> {
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(error(
                    start + 1,
                    "the string starting here is not closed: add a '\"' at its end",
                ));
            }
            Some('"') => return Ok((Tok::Str(value), i + 1 - start)),
            Some('\\') => {
                let escaped = match chars.get(i + 1) {
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    None => {
                        return Err(error(
                            start + 1,
                            "the string starting here is not closed: add a '\"' at its end",
                        ));
                    }
                    Some(other) => {
                        return Err(error(
                            i + 1,
                            format!(
                                "unknown escape '\\{other}' in a string: use \\\" \\\\ \\n or \\t"
                            ),
                        ));
                    }
                };
                value.push(escaped);
                i += 2;
            }
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// A number literal starting at an ASCII digit: the token and its width in characters.
fn lex_number(chars: &[char], start: usize) -> Result<(Tok, usize), ExprError> {
    let digits = |from: usize| {
        chars[from.min(chars.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut end = start + digits(start);
    if chars.get(end) == Some(&'.') {
        let decimals = digits(end + 1);
        if decimals == 0 {
            let text: String = chars[start..=end].iter().collect();
            return Err(error(
                start + 1,
                format!("'{text}' is not a number: write digits after the '.', e.g. 2.5"),
            ));
        }
        end += 1 + decimals;
    }
    if chars
        .get(end)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
    {
        let text: String = chars[start..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_' || **c == '.')
            .collect();
        return Err(error(
            start + 1,
            format!(
                "'{text}' is not a number: write numbers as digits with an optional decimal part, e.g. 3 or 2.5"
            ),
        ));
    }
    let text: String = chars[start..end].iter().collect();
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok((Tok::Num(n), end - start)),
        _ => Err(error(
            start + 1,
            format!("the number {} is too large", shorten(&text)),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent, one function per precedence level. Every recursion into a nested
// construct goes through `nest`, which checks the depth before recursing; chains of binary
// operators and of conditionals are loops building flat nodes, so the tree is as deep as the
// nesting.

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
    columns: Vec<String>,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The last token is always `End`, and `bump` never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next < self.tokens.len() - 1 {
            self.next += 1;
        }
        token
    }

    fn nest<T>(
        &mut self,
        pos: usize,
        inner: impl FnOnce(&mut Parser) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(error(
                pos,
                format!("the expression is nested more than {MAX_DEPTH} levels deep: simplify it"),
            ));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn expect(&mut self, tok: &Tok, message: impl FnOnce() -> String) -> Result<(), ExprError> {
        if &self.peek().tok == tok {
            self.bump();
            Ok(())
        } else {
            Err(error(self.peek().pos, message()))
        }
    }

    fn conditional(&mut self) -> Result<Node, ExprError> {
        let mut branches = Vec::new();
        loop {
            if self.peek().tok == Tok::Kw(Keyword::If) {
                let if_pos = self.bump().pos;
                let condition = self.or()?;
                self.expect(&Tok::Kw(Keyword::Then), || {
                    format!("expected 'then' after the condition of the 'if' at character {if_pos}")
                })?;
                let value = self.nest(if_pos, Parser::conditional)?;
                self.expect(&Tok::Kw(Keyword::Else), || {
                    format!(
                        "expected 'else' and a value for the 'if' at character {if_pos}: an 'if' needs both 'then' and 'else'"
                    )
                })?;
                branches.push(("if", condition, value));
                continue;
            }
            let first = self.or()?;
            if self.peek().tok == Tok::Question {
                let q_pos = self.bump().pos;
                let value = self.nest(q_pos, Parser::conditional)?;
                self.expect(&Tok::Colon, || {
                    format!("expected ':' and a value for the '?' at character {q_pos}")
                })?;
                branches.push(("?", first, value));
                continue;
            }
            return Ok(if branches.is_empty() {
                first
            } else {
                Node::Cond(branches, Box::new(first))
            });
        }
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        let mut items = vec![self.and()?];
        while matches!(self.peek().tok, Tok::Kw(Keyword::Or) | Tok::OrOr) {
            self.bump();
            items.push(self.and()?);
        }
        Ok(flat(items, Node::Or))
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut items = vec![self.not()?];
        while matches!(self.peek().tok, Tok::Kw(Keyword::And) | Tok::AndAnd) {
            self.bump();
            items.push(self.not()?);
        }
        Ok(flat(items, Node::And))
    }

    fn not(&mut self) -> Result<Node, ExprError> {
        if matches!(self.peek().tok, Tok::Kw(Keyword::Not) | Tok::Bang) {
            let pos = self.bump().pos;
            let inner = self.nest(pos, Parser::not)?;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let left = self.sum()?;
        let Tok::Cmp(op) = self.peek().tok else {
            return Ok(left);
        };
        self.bump();
        let right = self.sum()?;
        if let Tok::Cmp(second) = self.peek().tok {
            return Err(error(
                self.peek().pos,
                format!(
                    "comparisons cannot be chained ('{}' after '{}'): compare two values at a time and join the comparisons with 'and'",
                    second.as_str(),
                    op.as_str()
                ),
            ));
        }
        Ok(Node::Compare(op, Box::new(left), Box::new(right)))
    }

    fn sum(&mut self) -> Result<Node, ExprError> {
        let first = self.product()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek().tok {
                Tok::Plus => ArithOp::Add,
                Tok::Minus => ArithOp::Sub,
                _ => break,
            };
            self.bump();
            rest.push((op, self.product()?));
        }
        Ok(arith(first, rest))
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek().tok {
                Tok::Star => ArithOp::Mul,
                Tok::Slash => ArithOp::Div,
                _ => break,
            };
            self.bump();
            rest.push((op, self.unary()?));
        }
        Ok(arith(first, rest))
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.peek().tok == Tok::Minus {
            let pos = self.bump().pos;
            let inner = self.nest(pos, Parser::unary)?;
            return Ok(Node::Neg(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let token = self.peek().clone();
        match token.tok {
            Tok::Num(n) => {
                self.bump();
                Ok(Node::Num(n))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Node::Str(s))
            }
            Tok::Kw(Keyword::True) => {
                self.bump();
                Ok(Node::Bool(true))
            }
            Tok::Kw(Keyword::False) => {
                self.bump();
                Ok(Node::Bool(false))
            }
            Tok::Ident(name) => {
                self.bump();
                if self.peek().tok == Tok::LParen {
                    self.call(&name, token.pos)
                } else {
                    self.columns.push(name.clone());
                    Ok(Node::Column(name))
                }
            }
            Tok::LParen => {
                self.bump();
                let inner = self.nest(token.pos, Parser::conditional)?;
                self.expect(&Tok::RParen, || {
                    format!("expected ')' to close the '(' at character {}", token.pos)
                })?;
                Ok(inner)
            }
            Tok::End => Err(error(
                token.pos,
                "the expression ends where a value is expected: complete it",
            )),
            Tok::Kw(Keyword::Not) | Tok::Bang | Tok::Kw(Keyword::If) => Err(error(
                token.pos,
                format!(
                    "{} cannot stand here without parentheses: write (…) around it",
                    describe(&token.tok)
                ),
            )),
            other => Err(error(
                token.pos,
                format!(
                    "expected a value (a column name, a \"string\", a number, true, false, a function call or (…)) but found {}",
                    describe(&other)
                ),
            )),
        }
    }

    /// A call; the name has been consumed and the next token is `(`.
    fn call(&mut self, name: &str, name_pos: usize) -> Result<Node, ExprError> {
        let lower = name.to_ascii_lowercase();
        let Some(&(fname, func, min, max, usage)) = FUNCTIONS.iter().find(|(n, ..)| *n == lower)
        else {
            let names: Vec<&str> = FUNCTIONS.iter().map(|(n, ..)| *n).collect();
            let hint = match did_you_mean(&lower) {
                Some(n) => format!(" (did you mean '{n}'?)"),
                None => String::new(),
            };
            return Err(error(
                name_pos,
                format!("unknown function '{name}'{hint}: use {}", names.join(", ")),
            ));
        };
        let open_pos = self.bump().pos;
        let args = self.nest(open_pos, |p| {
            let mut args = Vec::new();
            if p.peek().tok == Tok::RParen {
                p.bump();
                return Ok(args);
            }
            loop {
                args.push(p.conditional()?);
                match p.peek().tok {
                    Tok::Comma => {
                        p.bump();
                    }
                    Tok::RParen => {
                        p.bump();
                        return Ok(args);
                    }
                    _ => {
                        return Err(error(
                            p.peek().pos,
                            format!(
                                "expected ',' or ')' to close the '(' of {fname} at character {open_pos}"
                            ),
                        ));
                    }
                }
            }
        })?;
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min} argument{}", if min == 1 { "" } else { "s" })
            } else {
                format!("{min} to {max} arguments")
            };
            return Err(error(
                name_pos,
                format!("{fname} takes {expected}, not {}: {usage}", args.len()),
            ));
        }
        Ok(Node::Call(func, args))
    }
}

fn flat(mut items: Vec<Node>, build: fn(Vec<Node>) -> Node) -> Node {
    if items.len() == 1 {
        items.pop().unwrap_or(Node::Bool(false))
    } else {
        build(items)
    }
}

fn arith(first: Node, rest: Vec<(ArithOp, Node)>) -> Node {
    if rest.is_empty() {
        first
    } else {
        Node::Arith(Box::new(first), rest)
    }
}

/// The known function closest to an unknown name, when it is a likely typo.
fn did_you_mean(name: &str) -> Option<&'static str> {
    if name.len() > 20 {
        return None;
    }
    FUNCTIONS
        .iter()
        .map(|(n, ..)| (edit_distance(name, n), *n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------------------------------------
// Evaluation

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Value {
    fn into_text(self) -> String {
        match self {
            Value::Str(s) => s,
            Value::Num(n) => format_number(n),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Str(s) => s.as_str().into(),
            Value::Num(n) => format_number(*n).into(),
            Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        }
    }

    /// The value for an error message.
    fn shown(&self) -> String {
        match self {
            Value::Str(s) => quote(s),
            Value::Num(n) => format_number(*n),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn as_number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => parse_number(s),
            Value::Bool(_) => None,
        }
    }

    fn number(&self, op: &str) -> Result<f64, EvalError> {
        self.as_number()
            .ok_or_else(|| EvalError(format!("{} is not a number for '{op}'", self.shown())))
    }

    fn boolean(&self, op: &str) -> Result<bool, EvalError> {
        let b = match self {
            Value::Bool(b) => Some(*b),
            Value::Str(s) => {
                let s = clean(s);
                if s.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if s.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }
            }
            Value::Num(_) => None,
        };
        b.ok_or_else(|| EvalError(format!("{} is not true or false for '{op}'", self.shown())))
    }
}

/// A string as a number: trimmed, an optional sign, digits and an optional decimal part.
/// Anything else (exponents, "NaN", "inf", thousands separators) is not a number.
fn parse_number(s: &str) -> Option<f64> {
    let s = clean(s);
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, decimals) = match unsigned.split_once('.') {
        Some((int, decimals)) => (int, Some(decimals)),
        None => (unsigned, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !decimals.is_none_or(all_digits) {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A number as text: see the module documentation.
fn format_number(n: f64) -> String {
    if n == 0.0 || !n.is_finite() {
        // Non-finite numbers never reach here: every operation checks its result.
        return "0".to_owned();
    }
    if n.abs() < 1e15 {
        let text = format!("{n:.10}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if text == "-0" { "0" } else { text }.to_owned()
    } else {
        let text = format!("{n:.9e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) => {
                let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                format!("{mantissa}e{exponent}")
            }
            None => text,
        }
    }
}

fn shorten(s: &str) -> String {
    const SHOWN: usize = 40;
    if s.chars().count() > SHOWN {
        let mut short: String = s.chars().take(SHOWN).collect();
        short.push('…');
        short
    } else {
        s.to_owned()
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", shorten(s))
}

fn too_long(what: &str) -> EvalError {
    EvalError(format!(
        "result longer than {MAX_RESULT_LEN} characters in {what}"
    ))
}

fn capped(s: String, what: &str) -> Result<Value, EvalError> {
    if s.chars().count() > MAX_RESULT_LEN {
        return Err(too_long(what));
    }
    Ok(Value::Str(s))
}

fn eval(node: &Node, cell: &dyn Fn(&str) -> Option<String>) -> Result<Value, EvalError> {
    Ok(match node {
        Node::Str(s) => Value::Str(s.clone()),
        Node::Num(n) => Value::Num(*n),
        Node::Bool(b) => Value::Bool(*b),
        Node::Column(name) => {
            let text = cell(name).unwrap_or_default();
            if text.chars().count() > MAX_RESULT_LEN {
                return Err(EvalError(format!(
                    "the value of column '{name}' is longer than {MAX_RESULT_LEN} characters"
                )));
            }
            Value::Str(text)
        }
        Node::Not(inner) => Value::Bool(!eval(inner, cell)?.boolean("not")?),
        Node::Neg(inner) => Value::Num(-eval(inner, cell)?.number("-")?),
        Node::Arith(first, rest) => {
            let mut acc = eval(first, cell)?;
            for (op, operand) in rest {
                let symbol = op.as_str();
                let a = acc.number(symbol)?;
                let b = eval(operand, cell)?.number(symbol)?;
                let result = match op {
                    ArithOp::Add => a + b,
                    ArithOp::Sub => a - b,
                    ArithOp::Mul => a * b,
                    ArithOp::Div if b == 0.0 => {
                        return Err(EvalError("division by zero".to_owned()));
                    }
                    ArithOp::Div => a / b,
                };
                if !result.is_finite() {
                    return Err(EvalError(format!(
                        "the result of '{symbol}' is too large a number"
                    )));
                }
                acc = Value::Num(result);
            }
            acc
        }
        Node::Compare(op, left, right) => {
            let left = eval(left, cell)?;
            let right = eval(right, cell)?;
            Value::Bool(compare(*op, &left, &right)?)
        }
        Node::And(items) => {
            for item in items {
                if !eval(item, cell)?.boolean("and")? {
                    return Ok(Value::Bool(false));
                }
            }
            Value::Bool(true)
        }
        Node::Or(items) => {
            for item in items {
                if eval(item, cell)?.boolean("or")? {
                    return Ok(Value::Bool(true));
                }
            }
            Value::Bool(false)
        }
        Node::Cond(branches, otherwise) => {
            for (word, condition, value) in branches {
                if eval(condition, cell)?.boolean(word)? {
                    return eval(value, cell);
                }
            }
            eval(otherwise, cell)?
        }
        Node::Call(func, args) => call(*func, args, cell)?,
    })
}

fn compare(op: CmpOp, left: &Value, right: &Value) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    let symbol = op.as_str();
    let ordering = if matches!(left, Value::Bool(_)) || matches!(right, Value::Bool(_)) {
        if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Err(EvalError(format!(
                "true and false cannot be ordered with '{symbol}': use '==' or '!='"
            )));
        }
        let (a, b) = (left.boolean(symbol)?, right.boolean(symbol)?);
        a.cmp(&b)
    } else if let (Some(a), Some(b)) = (left.as_number(), right.as_number()) {
        a.partial_cmp(&b).unwrap_or(Ordering::Equal)
    } else {
        left.text().cmp(&right.text())
    };
    Ok(match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    })
}

fn call(
    func: Func,
    args: &[Node],
    cell: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, EvalError> {
    // `coalesce` evaluates its arguments lazily; every other function needs all of them.
    if func == Func::Coalesce {
        for arg in args {
            let value = eval(arg, cell)?;
            if !clean(&value.text()).is_empty() {
                return Ok(value);
            }
        }
        return Ok(Value::Str(String::new()));
    }
    let values = args
        .iter()
        .map(|arg| eval(arg, cell))
        .collect::<Result<Vec<_>, _>>()?;
    let text = |i: usize| values.get(i).map(Value::text).unwrap_or_default();
    Ok(match func {
        Func::Lower => capped(text(0).to_lowercase(), "lower")?,
        Func::Upper => capped(text(0).to_uppercase(), "upper")?,
        Func::Trim => Value::Str(clean(&text(0)).to_owned()),
        Func::Concat => {
            let mut out = String::new();
            let mut count = 0;
            for value in &values {
                let part = value.text();
                count += part.chars().count();
                if count > MAX_RESULT_LEN {
                    return Err(too_long("concat"));
                }
                out.push_str(&part);
            }
            Value::Str(out)
        }
        Func::Len => Value::Num(text(0).chars().count() as f64),
        Func::Substr => {
            let whole = |i: usize, what: &str| -> Result<usize, EvalError> {
                let value = values.get(i).cloned().unwrap_or(Value::Num(0.0));
                let n = value.number("substr")?;
                if n.fract() != 0.0 {
                    return Err(EvalError(format!(
                        "the {what} of substr must be a whole number, not {}",
                        value.shown()
                    )));
                }
                // Negative values clamp to 0; `as` saturates huge ones.
                Ok(n.max(0.0) as usize)
            };
            let start = whole(1, "start")?;
            let length = whole(2, "length")?;
            Value::Str(text(0).chars().skip(start).take(length).collect())
        }
        Func::Replace => {
            let (s, from, to) = (text(0), text(1), text(2));
            if from.is_empty() {
                Value::Str(s.into_owned())
            } else {
                // Check the size of the result before building it.
                let matches = s.matches(from.as_ref()).count();
                let size = s.chars().count() - matches * from.chars().count()
                    + matches.saturating_mul(to.chars().count());
                if size > MAX_RESULT_LEN {
                    return Err(too_long("replace"));
                }
                Value::Str(s.replace(from.as_ref(), &to))
            }
        }
        Func::Contains => Value::Bool(text(0).contains(text(1).as_ref())),
        Func::StartsWith => Value::Bool(text(0).starts_with(text(1).as_ref())),
        Func::EndsWith => Value::Bool(text(0).ends_with(text(1).as_ref())),
        // Handled above.
        Func::Coalesce => Value::Str(String::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluate `text` over a row given as `column → cell` pairs.
    fn run(text: &str, row: &[(&str, &str)]) -> Result<String, EvalError> {
        let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let cell = |name: &str| {
            row.iter()
                .find(|(column, _)| *column == name)
                .map(|(_, value)| (*value).to_owned())
        };
        expr.eval(&cell)
    }

    fn ok(text: &str, row: &[(&str, &str)]) -> String {
        run(text, row).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn eval_err(text: &str, row: &[(&str, &str)]) -> String {
        match run(text, row) {
            Ok(v) => panic!("{text}: expected an error, got {v:?}"),
            Err(e) => e.0,
        }
    }

    fn parse_err(text: &str) -> ExprError {
        match Expr::parse(text) {
            Ok(e) => panic!("{text}: expected an error, got {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn spec_example() {
        let text = r#"Status == "Leaver" ? "false" : "true""#;
        assert_eq!(ok(text, &[("Status", "Leaver")]), "false");
        assert_eq!(ok(text, &[("Status", "Joiner")]), "true");
        // An absent column reads as "".
        assert_eq!(ok(text, &[]), "true");
        assert_eq!(Expr::parse(text).unwrap().columns(), vec!["Status"]);
    }

    #[test]
    fn concat_names_with_trim() {
        let text = r#"concat(trim(FirstName), " ", trim(LastName))"#;
        let row = [("FirstName", "  Jane "), ("LastName", "Doe\u{00A0}")];
        assert_eq!(ok(text, &row), "Jane Doe");
        assert_eq!(ok(r#"concat("a", 1, true, 2.50)"#, &[]), "a1true2.5");
        assert_eq!(ok("concat(A)", &[("A", "x")]), "x");
    }

    #[test]
    fn upper_and_lower() {
        assert_eq!(ok("upper(Dept)", &[("Dept", "Sales és")]), "SALES ÉS");
        assert_eq!(ok("lower(Dept)", &[("Dept", "SALES")]), "sales");
        assert_eq!(ok(r#"upper("straße")"#, &[]), "STRASSE");
        let text = r#"lower(Status) == "leaver""#;
        assert_eq!(ok(text, &[("Status", "LEAVER")]), "true");
        assert_eq!(
            ok(r#"Status == "leaver""#, &[("Status", "LEAVER")]),
            "false"
        );
        // Function names and keywords are case-insensitive; columns are not.
        assert_eq!(ok(r#"UPPER(a) == "X" AND TRUE"#, &[("a", "x")]), "true");
        assert_eq!(ok("Upper(A)", &[("a", "x")]), "");
    }

    #[test]
    fn coalesce_of_empty_cells() {
        let text = "coalesce(PreferredName, Nickname, FirstName)";
        let row = [
            ("PreferredName", ""),
            ("Nickname", "   "),
            ("FirstName", "Jane"),
        ];
        assert_eq!(ok(text, &row), "Jane");
        assert_eq!(ok(text, &[("FirstName", "Jane"), ("Nickname", "JJ")]), "JJ");
        assert_eq!(ok(text, &[]), "");
        // The first non-empty value is returned as it is; later ones are not evaluated.
        assert_eq!(ok(r#"coalesce(A, 1/0)"#, &[("A", " x ")]), " x ");
        assert_eq!(ok("coalesce(A, 2 * 3)", &[]), "6");
    }

    #[test]
    fn numeric_and_string_comparisons() {
        assert_eq!(ok(r#""10" > "9""#, &[]), "true");
        assert_eq!(ok("A > B", &[("A", "10"), ("B", "9")]), "true");
        assert_eq!(ok("A > 9", &[("A", " 10 ")]), "true");
        assert_eq!(ok(r#""abc" < "abd""#, &[]), "true");
        assert_eq!(ok(r#""abc" >= "abd""#, &[]), "false");
        // One side is not a number: both compare as text.
        assert_eq!(ok(r#""10" > "9a""#, &[]), "false");
        assert_eq!(ok(r#"A > 18"#, &[("A", "")]), "false");
        assert_eq!(ok(r#"1 == "1.0""#, &[]), "true");
        assert_eq!(ok(r#"-2 < "-1.5""#, &[]), "true");
        assert_eq!(ok(r#"A != "x""#, &[("A", "X")]), "true");
        assert_eq!(ok(r#"A <= "b""#, &[("A", "b")]), "true");
        // Booleans compare with == and != only, with booleans or "true"/"false" texts.
        assert_eq!(ok(r#"A == true"#, &[("A", "TRUE")]), "true");
        assert_eq!(ok(r#"(1 < 2) != false"#, &[]), "true");
        assert_eq!(
            eval_err("true < false", &[]),
            "true and false cannot be ordered with '<': use '==' or '!='"
        );
        assert_eq!(
            eval_err(r#"A == true"#, &[("A", "yes")]),
            "'yes' is not true or false for '=='"
        );
        assert_eq!(ok(r#"A == "x""#, &[("A", "x")]), "true");
    }

    #[test]
    fn arithmetic_and_number_formatting() {
        assert_eq!(ok("2.5 * 2", &[]), "5");
        assert_eq!(ok("1 / 3", &[]), "0.3333333333");
        assert_eq!(ok("2 / 3", &[]), "0.6666666667");
        assert_eq!(ok("0.1 + 0.2", &[]), "0.3");
        assert_eq!(ok("7 / 2", &[]), "3.5");
        assert_eq!(ok("10 - 2 - 3", &[]), "5");
        assert_eq!(ok("2 + 3 * 4", &[]), "14");
        assert_eq!(ok("(2 + 3) * 4", &[]), "20");
        assert_eq!(ok("-3 - 2", &[]), "-5");
        assert_eq!(ok("2 * -3", &[]), "-6");
        assert_eq!(ok("- -3", &[]), "3");
        assert_eq!(ok("0 * -1", &[]), "0");
        assert_eq!(ok("Salary * 1.1", &[("Salary", "1000")]), "1100");
        assert_eq!(ok("A + B", &[("A", "+2"), ("B", " -0.5")]), "1.5");
        assert_eq!(ok("-A", &[("A", "4")]), "-4");
        assert_eq!(ok("999999999999999 + 0", &[]), "999999999999999");
        assert_eq!(ok("1000000000000000 * 1", &[]), "1e15");
        assert_eq!(ok("123456789012345678 + 0", &[]), "1.23456789e17");
        assert_eq!(ok("0 - 1000000000000000 * 1000", &[]), "-1e18");
        assert_eq!(ok("1 / 100000000000", &[]), "0");
        assert_eq!(ok("0 - 1 / 100000000000", &[]), "0");
        assert_eq!(ok("len(A) * 2", &[("A", "héllo")]), "10");
        assert_eq!(format_number(0.000_000_000_05), "0.0000000001");
        assert_eq!(format_number(-12.5), "-12.5");
        assert_eq!(format_number(1e300), "1e300");
    }

    #[test]
    fn precedence_of_not_and_or() {
        // ((not (A == "x")) and (B == "y")) or (C == "z")
        let text = r#"not A == "x" and B == "y" or C == "z""#;
        let cases = [
            (("x", "y", "z"), "true"),
            (("x", "y", "-"), "false"),
            (("-", "y", "-"), "true"),
            (("-", "-", "-"), "false"),
            (("-", "-", "z"), "true"),
            (("x", "-", "z"), "true"),
        ];
        for ((a, b, c), expected) in cases {
            let row = [("A", a), ("B", b), ("C", c)];
            assert_eq!(ok(text, &row), expected, "A={a} B={b} C={c}");
        }
        let symbols = r#"!A == "x" && B == "y" || C == "z""#;
        assert_eq!(ok(symbols, &[("A", "-"), ("B", "y")]), "true");
        // and binds tighter than or.
        assert_eq!(ok("true or false and false", &[]), "true");
        assert_eq!(ok("(true or false) and false", &[]), "false");
        assert_eq!(ok("not not true", &[]), "true");
        assert_eq!(ok("A and B", &[("A", " True "), ("B", "FALSE")]), "false");
    }

    #[test]
    fn short_circuit() {
        assert_eq!(ok("false and 1 / 0 == 1", &[]), "false");
        assert_eq!(ok(r#"true or "abc""#, &[]), "true");
        assert_eq!(ok(r#"A == "" or 10 / A > 1"#, &[("A", "")]), "true");
        assert_eq!(ok(r#"A == "" or 10 / A > 1"#, &[("A", "5")]), "true");
        assert_eq!(ok(r#"A == "0" ? "none" : 10 / A"#, &[("A", "0")]), "none");
    }

    #[test]
    fn conditionals() {
        let text = r#"if Status == "Leaver" then "false" else "true""#;
        assert_eq!(ok(text, &[("Status", "Leaver")]), "false");
        assert_eq!(ok(text, &[("Status", "Joiner")]), "true");
        let nested = r#"Grade >= 10 ? "senior" : Grade >= 5 ? "mid" : "junior""#;
        assert_eq!(ok(nested, &[("Grade", "12")]), "senior");
        assert_eq!(ok(nested, &[("Grade", "7")]), "mid");
        assert_eq!(ok(nested, &[("Grade", "1")]), "junior");
        let chain = r#"IF A == "x" THEN "a" ELSE IF A == "y" THEN "b" ELSE "c""#;
        assert_eq!(ok(chain, &[("A", "x")]), "a");
        assert_eq!(ok(chain, &[("A", "y")]), "b");
        assert_eq!(ok(chain, &[("A", "z")]), "c");
        let inner = r#"if A then if B then "1" else "2" else "3""#;
        assert_eq!(ok(inner, &[("A", "true"), ("B", "true")]), "1");
        assert_eq!(ok(inner, &[("A", "true"), ("B", "false")]), "2");
        assert_eq!(ok(inner, &[("A", "false")]), "3");
        // The middle of ?: is a full expression; mixing both spellings works.
        let mixed = r#"A ? B ? "1" : "2" : if B then "3" else "4""#;
        assert_eq!(ok(mixed, &[("A", "true"), ("B", "false")]), "2");
        assert_eq!(ok(mixed, &[("A", "false"), ("B", "true")]), "3");
        assert_eq!(ok(r#"concat("x", (true ? "y" : "z"))"#, &[]), "xy");
        assert_eq!(ok("A ? 1 + 1 : 0", &[("A", "true")]), "2");
    }

    #[test]
    fn functions() {
        assert_eq!(ok("len(A)", &[("A", "日本語")]), "3");
        assert_eq!(ok("len(A)", &[]), "0");
        assert_eq!(ok("substr(A, 0, 3)", &[("A", "Jonathan")]), "Jon");
        assert_eq!(ok("substr(A, 5, 100)", &[("A", "Jonathan")]), "han");
        assert_eq!(ok("substr(A, 50, 2)", &[("A", "Jonathan")]), "");
        assert_eq!(ok("substr(A, -2, 2)", &[("A", "Jonathan")]), "Jo");
        assert_eq!(ok("substr(A, 1, -1)", &[("A", "Jonathan")]), "");
        assert_eq!(ok("substr(A, 1, 2)", &[("A", "日本語")]), "本語");
        assert_eq!(ok(r#"substr(A, "1", 1)"#, &[("A", "abc")]), "b");
        assert_eq!(
            eval_err("substr(A, 1.5, 1)", &[("A", "abc")]),
            "the start of substr must be a whole number, not 1.5"
        );
        assert_eq!(
            eval_err("substr(A, 0, B)", &[("A", "abc"), ("B", "x")]),
            "'x' is not a number for 'substr'"
        );
        assert_eq!(ok(r#"replace(A, "-", " ")"#, &[("A", "a-b-c")]), "a b c");
        assert_eq!(ok(r#"replace(A, "", "x")"#, &[("A", "ab")]), "ab");
        assert_eq!(ok(r#"contains(A, "@")"#, &[("A", "a@b")]), "true");
        assert_eq!(ok(r#"startswith(A, "EXT-")"#, &[("A", "EXT-12")]), "true");
        assert_eq!(ok(r#"endswith(A, "x")"#, &[("A", "EXT-12")]), "false");
        assert_eq!(ok(r#"StartsWith(A, "ext")"#, &[("A", "EXT-12")]), "false");
        // A name not followed by '(' is a column, even if it is also a function name.
        assert_eq!(ok("Len", &[("Len", "7")]), "7");
        assert_eq!(ok("len (Len)", &[("Len", "7")]), "1");
        assert_eq!(
            ok(r#""tab\there \"q\" \\ \n""#, &[]),
            "tab\there \"q\" \\ \n"
        );
    }

    #[test]
    fn columns_are_sorted_and_deduplicated() {
        let expr = Expr::parse(
            r#"concat(LastName, FirstName, LastName) == lower(Status) ? Dept : "x" + Cost_2"#,
        )
        .unwrap();
        assert_eq!(
            expr.columns(),
            vec!["Cost_2", "Dept", "FirstName", "LastName", "Status"]
        );
        assert!(Expr::parse(r#"upper("x")"#).unwrap().columns().is_empty());
    }

    #[test]
    fn parse_errors_have_positions() {
        let e = parse_err(r#"(Status == "x""#);
        assert_eq!(e.message, "expected ')' to close the '(' at character 1");
        assert_eq!(e.position, 15);
        assert_eq!(
            e.to_string(),
            "expected ')' to close the '(' at character 1 (at character 15)"
        );

        let e = parse_err(r#"A == ((B) "#);
        assert_eq!(
            (e.message.as_str(), e.position),
            ("expected ')' to close the '(' at character 6", 11)
        );

        let e = parse_err("lower(Status");
        assert_eq!(
            (e.message.as_str(), e.position),
            (
                "expected ',' or ')' to close the '(' of lower at character 6",
                13
            )
        );

        let e = parse_err(r#"A == lowr(Status)"#);
        assert_eq!(e.position, 6);
        assert_eq!(
            e.message,
            "unknown function 'lowr' (did you mean 'lower'?): use lower, upper, trim, concat, len, substr, replace, coalesce, contains, startswith, endswith"
        );
        assert!(
            parse_err("frobnicate(A)")
                .message
                .starts_with("unknown function 'frobnicate': use lower")
        );

        let e = parse_err("lower(A, B)");
        assert_eq!(
            (e.message.as_str(), e.position),
            ("lower takes 1 argument, not 2: lower(text)", 1)
        );
        let e = parse_err(r#"x == substr(A, 1)"#);
        assert_eq!(
            (e.message.as_str(), e.position),
            (
                "substr takes 3 arguments, not 2: substr(text, start, length)",
                6
            )
        );
        assert_eq!(
            parse_err("concat()").message,
            "concat takes 1 to 16 arguments, not 0: concat(a, b, …)"
        );
        let seventeen = format!("coalesce({})", vec!["A"; 17].join(", "));
        assert_eq!(
            parse_err(&seventeen).message,
            "coalesce takes 1 to 16 arguments, not 17: coalesce(a, b, …)"
        );

        let e = parse_err("A < B < C");
        assert_eq!(e.position, 7);
        assert!(
            e.message
                .starts_with("comparisons cannot be chained ('<' after '<')")
        );

        let e = parse_err(r#"Status == "x" Leaver"#);
        assert_eq!(e.position, 15);
        assert!(
            e.message
                .starts_with("unexpected the name 'Leaver' after a complete expression"),
            "{}",
            e.message
        );
        let e = parse_err("A)");
        assert_eq!(
            (e.message.as_str(), e.position),
            ("unexpected ')': there is no '(' for it to close", 2)
        );

        for empty in ["", "   ", "\n\t"] {
            let e = parse_err(empty);
            assert_eq!(e.position, 1);
            assert_eq!(
                e.message,
                "the expression is empty: write a value, a column name or a formula"
            );
        }
    }

    #[test]
    fn more_parse_errors() {
        let cases: [(&str, usize, &str); 18] = [
            (
                r#"A = "x""#,
                3,
                "a single '=' is not an operator: use '==' to compare",
            ),
            (
                r#"A <> "x""#,
                3,
                "'<>' is not an operator: use '!=' for 'not equal'",
            ),
            (
                "A & B",
                3,
                "a single '&' is not an operator: use 'and' or '&&'",
            ),
            (
                r#"A == "abc"#,
                6,
                "the string starting here is not closed: add a '\"' at its end",
            ),
            (
                r#"A == "a\qb""#,
                8,
                "unknown escape '\\q' in a string: use \\\" \\\\ \\n or \\t",
            ),
            (
                "A == 'x'",
                6,
                "strings are written in double quotes, e.g. \"Leaver\", not single quotes",
            ),
            (
                "A == 1.",
                6,
                "'1.' is not a number: write digits after the '.', e.g. 2.5",
            ),
            (
                "1e400",
                1,
                "'1e400' is not a number: write numbers as digits with an optional decimal part, e.g. 3 or 2.5",
            ),
            (
                "A ? \"x\"",
                8,
                "expected ':' and a value for the '?' at character 3",
            ),
            (
                r#"if A "x" else "y""#,
                6,
                "expected 'then' after the condition of the 'if' at character 1",
            ),
            (
                r#"if A then "x""#,
                14,
                "expected 'else' and a value for the 'if' at character 1: an 'if' needs both 'then' and 'else'",
            ),
            (
                "A ==",
                5,
                "the expression ends where a value is expected: complete it",
            ),
            (
                "A == not B",
                6,
                "'not' cannot stand here without parentheses: write (…) around it",
            ),
            (
                "A + * 2",
                5,
                "expected a value (a column name, a \"string\", a number, true, false, a function call or (…)) but found '*'",
            ),
            (
                "Stätus",
                3,
                "unexpected character 'ä': column names are ASCII letters, digits and '_', starting with a letter",
            ),
            (
                "_A",
                1,
                "unexpected character '_': column names are ASCII letters, digits and '_', starting with a letter",
            ),
            (
                "A == \u{201C}x\u{201D}",
                6,
                "typographic quote '\u{201C}': write strings in straight double quotes, e.g. \"Leaver\"",
            ),
            ("A # B", 3, "unexpected character '#'"),
        ];
        for (text, position, message) in cases {
            let e = parse_err(text);
            assert_eq!(
                (e.message.as_str(), e.position),
                (message, position),
                "{text}"
            );
        }
        let huge = "9".repeat(400);
        assert_eq!(
            parse_err(&huge).message,
            format!("the number {}… is too large", "9".repeat(40))
        );
    }

    #[test]
    fn eval_errors() {
        assert_eq!(eval_err("1 / 0", &[]), "division by zero");
        assert_eq!(
            eval_err("A / B", &[("A", "0"), ("B", "0.0")]),
            "division by zero"
        );
        assert_eq!(
            eval_err("A * 2", &[("A", "abc")]),
            "'abc' is not a number for '*'"
        );
        assert_eq!(eval_err("A + 1", &[]), "'' is not a number for '+'");
        assert_eq!(eval_err("true - 1", &[]), "true is not a number for '-'");
        assert_eq!(eval_err("-A", &[("A", "x")]), "'x' is not a number for '-'");
        for not_a_number in [
            "NaN",
            "inf",
            "-infinity",
            "1e5",
            "1,000",
            ".5",
            "5.",
            "0x10",
        ] {
            assert_eq!(
                eval_err("A * 1", &[("A", not_a_number)]),
                format!("'{not_a_number}' is not a number for '*'")
            );
        }
        assert_eq!(
            eval_err(r#"Status and true"#, &[("Status", "Leaver")]),
            "'Leaver' is not true or false for 'and'"
        );
        assert_eq!(
            eval_err("false or 1", &[]),
            "1 is not true or false for 'or'"
        );
        assert_eq!(eval_err("not A", &[]), "'' is not true or false for 'not'");
        assert_eq!(
            eval_err(r#"5 ? "a" : "b""#, &[]),
            "5 is not true or false for '?'"
        );
        assert_eq!(
            eval_err(r#"if A then "a" else "b""#, &[("A", "yes")]),
            "'yes' is not true or false for 'if'"
        );
        let big = format!("{} * 1", "9".repeat(300));
        assert_eq!(ok(&big, &[]), "1e300");
        let overflow = format!("{0} * {0}", "9".repeat(300));
        assert_eq!(
            eval_err(&overflow, &[]),
            "the result of '*' is too large a number"
        );
        let long_value = "x".repeat(100);
        assert_eq!(
            eval_err("A + 1", &[("A", &long_value)]),
            format!("'{}…' is not a number for '+'", "x".repeat(40))
        );
    }

    #[test]
    fn length_limit() {
        let at_limit = format!("\"{}\"", "x".repeat(MAX_EXPR_LEN - 2));
        assert_eq!(ok(&at_limit, &[]).len(), MAX_EXPR_LEN - 2);
        let over = format!("\"{}\"", "x".repeat(MAX_EXPR_LEN - 1));
        let e = parse_err(&over);
        assert_eq!(e.position, MAX_EXPR_LEN + 1);
        assert_eq!(
            e.message,
            "the expression is 2001 characters long, more than the limit of 2000: shorten it"
        );
        // Characters, not bytes.
        let multibyte = format!("\"{}\"", "é".repeat(MAX_EXPR_LEN - 2));
        assert!(Expr::parse(&multibyte).is_ok());
    }

    #[test]
    fn depth_limit() {
        let nested = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(ok(&nested(MAX_DEPTH), &[]), "1");
        let e = parse_err(&nested(MAX_DEPTH + 1));
        assert_eq!(e.position, MAX_DEPTH + 1);
        assert_eq!(
            e.message,
            "the expression is nested more than 32 levels deep: simplify it"
        );
        // Far beyond the limits: an error, never a stack overflow.
        assert!(Expr::parse(&"(".repeat(100_000)).is_err());
        assert_eq!(parse_err(&"(".repeat(MAX_EXPR_LEN)).position, MAX_DEPTH + 1);
        assert_eq!(parse_err(&"-".repeat(MAX_EXPR_LEN)).position, MAX_DEPTH + 1);
        assert_eq!(parse_err(&"!".repeat(MAX_EXPR_LEN)).position, MAX_DEPTH + 1);
        assert_eq!(parse_err(&"lower(".repeat(300)).position, 6 * MAX_DEPTH + 6);
        assert_eq!(ok(&format!("{}2", "-".repeat(MAX_DEPTH)), &[]), "2");
        let ternaries = format!("{}1{}", "true ? ".repeat(40), " : 0".repeat(40));
        assert_eq!(parse_err(&ternaries).position, 7 * MAX_DEPTH + 6);
        // Chains are not nesting: long sums, or-lists and else-if chains are fine.
        let sum = vec!["1"; 900].join("+");
        assert_eq!(ok(&sum, &[]), "900");
        let alternatives = (0..100)
            .map(|i| format!("A == \"{i}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        assert_eq!(ok(&alternatives, &[("A", "99")]), "true");
        let chain = (0..60)
            .map(|i| format!("A == {i} ? \"{i}\" : "))
            .collect::<String>()
            + "\"none\"";
        assert_eq!(ok(&chain, &[("A", "59")]), "59");
    }

    #[test]
    fn result_length_limit() {
        let long = "a".repeat(6_000);
        let message = |what: &str| format!("result longer than 10000 characters in {what}");
        assert_eq!(eval_err("concat(A, A)", &[("A", &long)]), message("concat"));
        assert_eq!(
            ok("len(concat(A, substr(A, 0, 4000)))", &[("A", &long)]),
            "10000"
        );
        assert_eq!(
            eval_err(r#"replace(A, "a", "aa")"#, &[("A", &long)]),
            message("replace")
        );
        assert_eq!(
            eval_err("upper(A)", &[("A", &"ß".repeat(6_000))]),
            message("upper")
        );
        assert_eq!(
            eval_err("len(A)", &[("A", &"x".repeat(MAX_RESULT_LEN + 1))]),
            "the value of column 'A' is longer than 10000 characters"
        );
        assert_eq!(
            ok("A", &[("A", &"x".repeat(MAX_RESULT_LEN))]).len(),
            MAX_RESULT_LEN
        );
    }

    fn check_no_panic(text: &str, rows: &[Vec<(&str, String)>]) {
        match Expr::parse(text) {
            Err(e) => {
                let len = text.chars().count();
                assert!(
                    e.position >= 1 && e.position <= len.min(MAX_EXPR_LEN) + 1,
                    "{text:?}: position {} out of range",
                    e.position
                );
                assert!(!e.message.is_empty());
            }
            Ok(expr) => {
                let _ = expr.columns();
                for row in rows {
                    let cell = |name: &str| {
                        row.iter()
                            .find(|(column, _)| *column == name)
                            .map(|(_, v)| v.clone())
                    };
                    match expr.eval(&cell) {
                        Ok(value) => {
                            assert!(value.chars().count() <= MAX_RESULT_LEN, "{text:?}");
                        }
                        Err(e) => assert!(!e.0.is_empty()),
                    }
                }
            }
        }
    }

    #[test]
    fn no_panics_on_random_input() {
        let rows: Vec<Vec<(&str, String)>> = [
            "",
            "0",
            "10",
            "-2.5",
            "abc",
            "Leaver",
            "true",
            "FALSE",
            "NaN",
            "inf",
            "1e400",
            "日本語",
            " ",
        ]
        .iter()
        .map(|v| {
            vec![
                ("A", (*v).to_owned()),
                ("B", "3".to_owned()),
                ("Status", (*v).to_owned()),
                ("Long", "ß".repeat(MAX_RESULT_LEN)),
            ]
        })
        .collect();
        // Pieces of expressions, separated by spaces here; joined with or without a space.
        let pieces: Vec<&str> = concat!(
            "( ) , ? : + - * / == != < <= > >= ! && || and or not if then else true false ",
            "A B Status Long Missing 0 1 2.5 1e400 999999999999999999999 \"x\" \"\" \"日本\" ",
            "\"a\\n\" \" \\ lower( upper( trim( concat( len( substr( replace( coalesce( ",
            "contains( startswith( endswith( lowr( é 🦀 \u{0} ' = & | . \u{a0}",
        )
        .split(' ')
        .collect();
        let mut rng = crate::damage::Rng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..4_000 {
            // Random ASCII.
            let len = rng.below(40);
            let ascii: String = (0..len).map(|_| char::from(rng.below(128) as u8)).collect();
            check_no_panic(&ascii, &rows[..3]);
            // Random multi-byte characters.
            let unicode: String = (0..len)
                .filter_map(|_| char::from_u32(rng.below(0x3_0000) as u32))
                .collect();
            check_no_panic(&unicode, &rows[..1]);
            // Random sequences of tokens, most of them nearly valid.
            let count = 1 + rng.below(25);
            let tokens: String = (0..count)
                .map(|_| pieces[rng.below(pieces.len())])
                .collect::<Vec<_>>()
                .join(if rng.below(2) == 0 { "" } else { " " });
            check_no_panic(&tokens, &rows);
        }
        // Well-formed expressions exercising every operator over awkward values.
        let valid = [
            "A / B",
            "A / (B - 3)",
            "A * A * A * A * A * A * A * A * A * A * A * A * A * A * A",
            "0 / 0",
            "A - A",
            "-A",
            "A + 1",
            "A > B",
            "A == B",
            "A < \"m\"",
            "not A",
            "A and B",
            "A or true",
            "A ? A : B",
            "if A then B else A",
            "len(Long) + len(A)",
            "concat(Long, A)",
            "concat(A, Long)",
            "upper(Long)",
            "lower(Long)",
            "replace(Long, \"ß\", \"ss\")",
            "replace(A, A, A)",
            "substr(A, B, A)",
            "substr(Long, 9999, 10)",
            "coalesce(Missing, A, B)",
            "contains(A, B)",
            "startswith(A, \"\")",
            "endswith(Long, A)",
            "trim(A) == \"\"",
            "999999999999999999999 * 999999999999999999999 * 999999999999999999999",
        ];
        for text in valid {
            assert!(Expr::parse(text).is_ok(), "{text}");
            check_no_panic(text, &rows);
        }
        // Arithmetic gives a finite number or an error: never "NaN" or "inf".
        for text in ["0 / 0", "A * 0", "A + 1", "A / B", "-A", "A - A", "B / A"] {
            let expr = Expr::parse(text).unwrap();
            for row in &rows {
                let cell =
                    |name: &str| row.iter().find(|(c, _)| *c == name).map(|(_, v)| v.clone());
                if let Ok(value) = expr.eval(&cell) {
                    assert!(parse_number(&value).is_some(), "{text}: {value}");
                }
            }
        }
    }
}
