//! The field mapping of a file or pull configuration (SPEC §4): which source column feeds
//! which field.

use std::collections::BTreeMap;
use std::fmt;

use crate::expr::{Expr, ExprError};
use crate::field::FieldKey;

/// A checked mapping: every key is a known field, every column a valid header, and the
/// required fields are mapped (to a column or by an expression).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    fields: BTreeMap<FieldKey, String>,
    custom_fields: BTreeMap<String, String>,
    computed: BTreeMap<FieldKey, Computed>,
}

/// A mapping's three tables as text: field key → column, custom name → column, field key →
/// expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingText {
    pub fields: Vec<(String, String)>,
    pub custom_fields: Vec<(String, String)>,
    pub computed: Vec<(String, String)>,
}

/// A field computed from the row's columns (SPEC §4), with the text it was written as.
#[derive(Clone, Debug)]
pub struct Computed {
    pub source: String,
    pub expr: Expr,
}

/// Two expressions are the same when their text is.
impl PartialEq for Computed {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for Computed {}

/// Why a mapping was refused. Each message is one line an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("unknown field '{key}' in [fields]; valid keys are: {valid}")]
    UnknownField { key: String, valid: String },
    #[error("required field{} {} not mapped: add {} to [fields]", plural(.0), .0.join(", "), .0.join(", "))]
    RequiredUnmapped(Vec<String>),
    #[error(
        "column '{column}' for {target} is not a valid header: headers are PascalCase ASCII letters and digits, e.g. '{suggestion}'"
    )]
    BadColumn {
        target: String,
        column: String,
        suggestion: String,
    },
    #[error(
        "custom field name '{0}' is not valid: use letters, digits and underscores, starting with a letter"
    )]
    BadCustomName(String),
    #[error("'{0}' is both mapped to a column and computed: keep one of the two")]
    MappedAndComputed(String),
    #[error("the expression computing '{field}' is not valid: {error}")]
    BadExpression { field: String, error: ExprError },
}

fn plural(v: &[String]) -> &'static str {
    if v.len() == 1 { "" } else { "s" }
}

impl Mapping {
    /// Build a mapping from `field key → column`, `custom name → column` and
    /// `field key → expression` pairs, checking every rule.
    pub fn new(
        fields: impl IntoIterator<Item = (String, String)>,
        custom_fields: impl IntoIterator<Item = (String, String)>,
        computed: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Mapping, MappingError> {
        let mut mapping = Mapping::default();
        for (key, column) in fields {
            let field = FieldKey::from_key(&key).ok_or_else(|| MappingError::UnknownField {
                key: key.clone(),
                valid: FieldKey::valid_keys(),
            })?;
            check_column(field.key(), &column)?;
            mapping.fields.insert(field, column);
        }
        for (name, column) in custom_fields {
            let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name.len() <= 64;
            if !valid_name {
                return Err(MappingError::BadCustomName(name));
            }
            check_column(&name, &column)?;
            mapping.custom_fields.insert(name, column);
        }
        for (key, source) in computed {
            let field = FieldKey::from_key(&key).ok_or_else(|| MappingError::UnknownField {
                key: key.clone(),
                valid: FieldKey::valid_keys(),
            })?;
            if mapping.fields.contains_key(&field) {
                return Err(MappingError::MappedAndComputed(key));
            }
            let expr = Expr::parse(&source).map_err(|error| MappingError::BadExpression {
                field: key.clone(),
                error,
            })?;
            for column in expr.columns() {
                check_column(field.key(), &column)?;
            }
            mapping.computed.insert(field, Computed { source, expr });
        }
        let missing: Vec<String> = FieldKey::REQUIRED_FOR_FILES
            .into_iter()
            .filter(|f| !mapping.fields.contains_key(f) && !mapping.computed.contains_key(f))
            .map(|f| f.key().to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(MappingError::RequiredUnmapped(missing));
        }
        Ok(mapping)
    }

    pub fn fields(&self) -> impl Iterator<Item = (FieldKey, &str)> {
        self.fields.iter().map(|(k, v)| (*k, v.as_str()))
    }

    pub fn custom_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.custom_fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The computed fields and their expressions.
    pub fn computed(&self) -> impl Iterator<Item = (FieldKey, &Computed)> {
        self.computed.iter().map(|(k, v)| (*k, v))
    }

    /// The mapping as the text it is written in: what `Mapping::new` takes back.
    pub fn text(&self) -> MappingText {
        MappingText {
            fields: self
                .fields()
                .map(|(k, c)| (k.key().to_owned(), c.to_owned()))
                .collect(),
            custom_fields: self
                .custom_fields()
                .map(|(k, c)| (k.to_owned(), c.to_owned()))
                .collect(),
            computed: self
                .computed()
                .map(|(k, c)| (k.key().to_owned(), c.source.clone()))
                .collect(),
        }
    }

    /// Every column the mapping reads (expressions' columns included), each once.
    pub fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self
            .fields
            .values()
            .chain(self.custom_fields.values())
            .cloned()
            .chain(self.computed.values().flat_map(|c| c.expr.columns()))
            .collect();
        columns.sort_unstable();
        columns.dedup();
        columns
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .fields()
            .map(|(k, c)| format!("{k}={c}"))
            .chain(self.custom_fields().map(|(k, c)| format!("{k}={c}")))
            .chain(self.computed().map(|(k, c)| format!("{k}=({})", c.source)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn check_column(target: &str, column: &str) -> Result<(), MappingError> {
    if is_pascal_case(column) {
        Ok(())
    } else {
        Err(MappingError::BadColumn {
            target: target.to_owned(),
            column: column.to_owned(),
            suggestion: pascal_case_suggestion(column),
        })
    }
}

/// A header as SPEC §5 wants it: ASCII letters and digits, starting with an upper-case letter.
pub fn is_pascal_case(header: &str) -> bool {
    header
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        && header.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The PascalCase form of a header: `Cost Centre (EUR)` → `CostCentreEur`. Accents are
/// dropped to their base letter where that is obvious, other characters split words.
pub fn pascal_case_suggestion(header: &str) -> String {
    let mut out = String::new();
    for word in header
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let ascii: String = word.chars().filter_map(fold_to_ascii).collect();
        let mut chars = ascii.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            let rest: String = chars.collect();
            // An all-caps word (EUR, ID) becomes Eur/Id; a camelCase word keeps its humps.
            if rest.chars().all(|c| !c.is_ascii_lowercase()) {
                out.push_str(&rest.to_ascii_lowercase());
            } else {
                out.push_str(&rest);
            }
        }
    }
    if out.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        out.insert(0, 'N');
    }
    if out.is_empty() {
        "Column".to_owned()
    } else {
        out
    }
}

fn fold_to_ascii(c: char) -> Option<char> {
    if c.is_ascii_alphanumeric() {
        return Some(c);
    }
    let folded = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'ç' => 'c',
        'Ç' => 'C',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'ý' | 'ÿ' => 'y',
        'Ý' => 'Y',
        'ß' => 's',
        _ => return None,
    };
    Some(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("external_id", "EmployeeNumber"),
        ("username", "EmployeeNumber"),
        ("active", "Active"),
    ];

    #[test]
    fn a_good_mapping() {
        let m = Mapping::new(pairs(&REQUIRED), pairs(&[("CostCentre", "CostCentre")]), []).unwrap();
        assert_eq!(m.columns(), vec!["Active", "CostCentre", "EmployeeNumber"]);
    }

    #[test]
    fn unknown_key_lists_valid_keys() {
        let mut f = pairs(&REQUIRED);
        f.push(("mail".into(), "Mail".into()));
        let err = Mapping::new(f, [], []).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unknown field 'mail' in [fields]; valid keys are: external_id, username"
            ),
            "{err}"
        );
        assert!(err.contains("phone_mobile"));
    }

    #[test]
    fn required_fields_must_be_mapped() {
        let err = Mapping::new(pairs(&REQUIRED[..1]), [], []).unwrap_err();
        assert_eq!(
            err.to_string(),
            "required fields username, active not mapped: add username, active to [fields]"
        );
    }

    #[test]
    fn bad_columns_get_a_suggestion() {
        let mut f = pairs(&REQUIRED);
        f.push(("department".into(), "Cost Centre (EUR)".into()));
        let err = Mapping::new(f, [], []).unwrap_err().to_string();
        assert!(err.contains("'CostCentreEur'"), "{err}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(pascal_case_suggestion("Cost Centre (EUR)"), "CostCentreEur");
        assert_eq!(pascal_case_suggestion("first_name"), "FirstName");
        assert_eq!(pascal_case_suggestion("Département"), "Departement");
        assert_eq!(pascal_case_suggestion("dateOfBirth"), "DateOfBirth");
        assert_eq!(pascal_case_suggestion("2nd Phone"), "N2ndPhone");
        assert!(is_pascal_case("DateOfBirth"));
        assert!(!is_pascal_case("dateOfBirth"));
        assert!(!is_pascal_case("Date Of Birth"));
    }
}
