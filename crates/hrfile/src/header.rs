//! The header row checks shared by the CSV and XLSX readers (SPEC §5): every header is
//! PascalCase ASCII, none is repeated, and every mapped column is present.

use std::collections::HashMap;

use rollcall_domain::expr::Expr;
use rollcall_domain::mapping::{Mapping, is_pascal_case, pascal_case_suggestion};
use rollcall_domain::run::Issue;
use rollcall_domain::{ErrorType, FieldKey};

use crate::FileProblem;

/// A computed field: its expression and the positions of the columns the expression reads.
pub(crate) type ComputedColumns = (FieldKey, Expr, Vec<(String, usize)>);

/// Where each mapped field's cell is (0-based column indices).
pub(crate) struct Columns {
    pub fields: Vec<(FieldKey, usize)>,
    pub custom: Vec<(String, usize)>,
    pub computed: Vec<ComputedColumns>,
    /// How many columns the header row has.
    pub width: usize,
}

/// Check the header row's cells (already decoded and trimmed), found on the file's `line`,
/// against the mapping. Every problem is reported, not just the first, so that one upload
/// shows everything to fix.
pub(crate) fn check_headers(
    headers: &[String],
    line: u64,
    mapping: &Mapping,
) -> Result<Columns, Vec<FileProblem>> {
    let mut problems = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            problems.push(FileProblem::new(
                Some(line),
                format!("Column {} has no header: name it or remove it", i + 1),
                "",
            ));
            continue;
        }
        if !is_pascal_case(h) {
            problems.push(FileProblem::new(
                Some(line),
                format!(
                    "Header '{h}' is not PascalCase ASCII (letters and digits, no spaces, accents or symbols): rename it to '{}'",
                    pascal_case_suggestion(h)
                ),
                format!("header={h}"),
            ));
        }
        if let Some(first) = seen.insert(h, i) {
            problems.push(FileProblem::new(
                Some(line),
                format!(
                    "Header '{h}' appears twice (columns {} and {}): keep one",
                    first + 1,
                    i + 1
                ),
                format!("header={h}"),
            ));
        }
    }
    let position = |column: &str| headers.iter().position(|h| h == column);
    let mut missing = Vec::new();
    for column in mapping.columns() {
        if position(&column).is_none() {
            missing.push(column);
        }
    }
    if !missing.is_empty() {
        problems.push(FileProblem::new(
            Some(line),
            format!(
                "Mapped column{} missing: {}. Add {} to the file or change the mapping",
                if missing.len() == 1 { " is" } else { "s are" },
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            ),
            missing
                .iter()
                .map(|c| format!("column={c}"))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Columns {
        fields: mapping
            .fields()
            .filter_map(|(f, c)| position(c).map(|i| (f, i)))
            .collect(),
        custom: mapping
            .custom_fields()
            .filter_map(|(n, c)| position(c).map(|i| (n.to_owned(), i)))
            .collect(),
        computed: mapping
            .computed()
            .map(|(f, c)| {
                let reads = c
                    .expr
                    .columns()
                    .into_iter()
                    .filter_map(|name| position(&name).map(|i| (name, i)))
                    .collect();
                (f, c.expr.clone(), reads)
            })
            .collect(),
        width: headers.len(),
    })
}

impl Columns {
    /// The cells of the computed fields for one row (`cell(i)` is the row's cell at column
    /// `i`). A failing expression is the row's `INVALID_VALUE`.
    pub fn computed_cells(
        &self,
        cell: &dyn Fn(usize) -> String,
    ) -> Result<Vec<(FieldKey, String)>, Issue> {
        self.computed
            .iter()
            .map(|(field, expr, reads)| {
                let lookup = |name: &str| -> Option<String> {
                    reads.iter().find(|(n, _)| n == name).map(|(_, i)| cell(*i))
                };
                expr.eval(&lookup)
                    .map(|value| (*field, value))
                    .map_err(|e| {
                        Issue::new(
                            ErrorType::InvalidValue,
                            format!("{} could not be computed: {e}", field.label()),
                            format!("{}=", field.key()),
                        )
                    })
            })
            .collect()
    }
}
