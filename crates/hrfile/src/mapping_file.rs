//! The mapping file of SPEC §11:
//!
//! ```toml
//! [fields]          # rollcall field = source column
//! external_id = "EmployeeNumber"
//! [custom_fields]   # custom field name = source column
//! CostCentre = "CostCentre"
//! [computed]        # rollcall field = expression
//! ```

use std::collections::BTreeMap;

use rollcall_domain::mapping::{Mapping, MappingError};

#[derive(Debug, thiserror::Error)]
pub enum MappingFileError {
    #[error("the mapping file is not valid TOML: {0}")]
    Syntax(String),
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    custom_fields: BTreeMap<String, String>,
    #[serde(default)]
    computed: BTreeMap<String, String>,
}

/// Parse and check a mapping file.
pub fn parse_mapping(text: &str) -> Result<Mapping, MappingFileError> {
    let file: MappingFile = toml::from_str(text).map_err(|e| {
        // toml's message spans several lines with a caret diagram; keep its first line and
        // say where.
        let first = e
            .message()
            .lines()
            .next()
            .unwrap_or("syntax error")
            .to_owned();
        let at = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        MappingFileError::Syntax(format!("{first}{at}"))
    })?;
    Ok(Mapping::new(
        file.fields,
        file.custom_fields,
        file.computed,
    )?)
}

/// A mapping as the file an operator would write for it: `parse_mapping` reads it back as
/// the same mapping.
pub fn mapping_toml(mapping: &Mapping) -> String {
    let text = mapping.text();
    let file = MappingFile {
        fields: text.fields.into_iter().collect(),
        custom_fields: text.custom_fields.into_iter().collect(),
        computed: text.computed.into_iter().collect(),
    };
    toml::to_string(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_written_back_reads_as_the_same_mapping() {
        let m = parse_mapping(
            r#"
[fields]
external_id = "EmployeeNumber"
username    = "EmployeeNumber"
[custom_fields]
CostCentre  = "CostCentre"
[computed]
active      = 'Status == "Leaver" ? "false" : "true"'
"#,
        )
        .unwrap();
        let text = mapping_toml(&m);
        assert!(text.contains("[computed]"), "{text}");
        assert_eq!(parse_mapping(&text).unwrap(), m);
    }

    #[test]
    fn the_spec_example_without_computed_fields() {
        let m = parse_mapping(
            r#"
[fields]
external_id = "EmployeeNumber"
username    = "EmployeeNumber"
email       = "WorkEmail"
active      = "Active"
manager     = "ManagerEmployeeNumber"
[custom_fields]
CostCentre  = "CostCentre"
"#,
        )
        .unwrap();
        assert_eq!(
            m.columns(),
            vec![
                "Active",
                "CostCentre",
                "EmployeeNumber",
                "ManagerEmployeeNumber",
                "WorkEmail"
            ]
        );
    }

    #[test]
    fn the_spec_example_with_a_computed_field() {
        let m = parse_mapping(
            r#"
[fields]
external_id = "EmployeeNumber"
username    = "EmployeeNumber"
[computed]
active      = 'Status == "Leaver" ? "false" : "true"'
"#,
        )
        .unwrap();
        assert_eq!(m.columns(), vec!["EmployeeNumber", "Status"]);
        let (field, computed) = m.computed().next().unwrap();
        assert_eq!(field, rollcall_domain::FieldKey::Active);
        let leaver = computed
            .expr
            .eval(&|c| (c == "Status").then(|| "Leaver".to_owned()))
            .unwrap();
        assert_eq!(leaver, "false");
    }

    #[test]
    fn errors_are_one_line() {
        for (text, expected) in [
            ("[fields\n", "not valid TOML"),
            ("[fields]\nexternal_id = 3\n", "not valid TOML"),
            ("[colums]\n", "not valid TOML"),
            ("[fields]\nmail = \"Mail\"\n", "unknown field 'mail'"),
            (
                "[fields]\nexternal_id = \"Id\"\n",
                "required fields username, active not mapped",
            ),
            (
                "[fields]\nexternal_id = \"Id\"\nusername = \"Id\"\nactive = \"On\"\n[computed]\nactive = 'true'\n",
                "'active' is both mapped to a column and computed",
            ),
            (
                "[fields]\nexternal_id = \"Id\"\nusername = \"Id\"\n[computed]\nactive = 'lowr(Status)'\n",
                "the expression computing 'active' is not valid: unknown function 'lowr'",
            ),
            (
                "[fields]\nexternal_id = \"Id\"\nusername = \"Id\"\n[computed]\nactive = 'status == \"x\"'\n",
                "column 'status' for active is not a valid header",
            ),
        ] {
            let err = parse_mapping(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
