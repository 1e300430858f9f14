//! PATCH (RFC 7644 §3.5.2) applied to a SCIM User held as JSON, with the forms Microsoft
//! Entra ID and Okta really send: path-less operations whose value keys are paths, booleans
//! as strings, value-filtered paths that create the element they do not find, and the manager
//! as a bare id.
//!
//! Values are checked for their JSON shape only; the caller validates their content.

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimType};
use crate::filter::{self, CompValue, CompareOp, Filter, Sub, Target};
use crate::resource::json_kind;
use crate::schema::{AttrDef, AttrPath, Container, Kind, UserSchema};

/// The most operations one PATCH may hold.
pub const MAX_OPERATIONS: usize = 1000;

const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Replace => "replace",
            OpKind::Remove => "remove",
        }
    }
}

/// One operation of a PATCH request.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOp {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// The target of an operation: `[urn:]attr[.sub]`, `attr[filter]`, `attr[filter].sub`, or a
/// bare schema URN (whose attributes the value holds).
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    /// The path as sent, trimmed: error details quote it, and a bare schema URN is
    /// recognised by it (it would otherwise read as attribute `User` of a shorter URN).
    pub text: String,
    /// The attribute and sub-attribute; with a value filter, `sub` is the part after `]`.
    pub attr: AttrPath,
    /// The value filter; its paths name sub-attributes of `attr`.
    pub filter: Option<Filter>,
}

impl PatchPath {
    /// Parse a path; errors are 400 invalidPath.
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        let (attr, filter) = filter::parse_path(text)?;
        Ok(PatchPath {
            text: text.trim().to_owned(),
            attr,
            filter,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Read the operations of a PATCH body.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let Some(body) = body.as_object() else {
        return Err(ScimError::invalid_syntax(
            "a PATCH body must be a JSON object with an \"Operations\" array",
        ));
    };
    if let Some(schemas) = field(body, "schemas") {
        let is_patch_op = |v: &Value| {
            v.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_URN))
        };
        let ok = match schemas {
            Value::Array(items) => items.iter().any(is_patch_op),
            other => is_patch_op(other),
        };
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "\"schemas\" must contain \"{PATCH_OP_URN}\""
            )));
        }
    }
    let ops = match field(body, "Operations") {
        Some(Value::Array(ops)) => ops,
        Some(_) => {
            return Err(ScimError::invalid_syntax(
                "\"Operations\" must be an array of operations",
            ));
        }
        None => {
            return Err(ScimError::invalid_syntax(
                "the PATCH body has no \"Operations\" array",
            ));
        }
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax(
            "\"Operations\" is empty: there is nothing to do",
        ));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "{} operations in one PATCH; at most {MAX_OPERATIONS} are accepted",
            ops.len()
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_op(op).map_err(|e| in_operation(i, e)))
        .collect()
}

fn parse_op(value: &Value) -> Result<PatchOp, ScimError> {
    let Some(fields) = value.as_object() else {
        return Err(ScimError::invalid_syntax(
            "an operation must be a JSON object with \"op\", \"path\" and \"value\"",
        ));
    };
    let op = match field(fields, "op") {
        Some(Value::String(name)) => [OpKind::Add, OpKind::Replace, OpKind::Remove]
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ScimError::invalid_syntax(format!(
                    "\"op\" is \"{name}\"; expected add, replace or remove"
                ))
            })?,
        _ => {
            return Err(ScimError::invalid_syntax(
                "\"op\" is missing; expected add, replace or remove",
            ));
        }
    };
    let path = match field(fields, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(PatchPath::parse(text)?),
        Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
    };
    let value = field(fields, "value").cloned();
    match (op, &path, &value) {
        (OpKind::Remove, None, _) => return Err(no_target()),
        (OpKind::Add | OpKind::Replace, _, None) => {
            return Err(ScimError::invalid_value(format!(
                "{} needs a \"value\"",
                op.as_str()
            )));
        }
        (OpKind::Add | OpKind::Replace, None, Some(value)) if !value.is_object() => {
            return Err(pathless_needs_object(op));
        }
        _ => {}
    }
    Ok(PatchOp { op, path, value })
}

fn no_target() -> ScimError {
    ScimError::bad_request(
        ScimType::NoTarget,
        "remove needs a \"path\" naming what to remove",
    )
}

fn pathless_needs_object(op: OpKind) -> ScimError {
    ScimError::invalid_value(format!(
        "{} without a \"path\" needs an object \"value\" of attributes and their values",
        op.as_str()
    ))
}

fn in_operation(index: usize, error: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{index}]: {}", error.detail),
        ..error
    }
}

// ---------------------------------------------------------------------------------------------
// Applying

/// Apply operations in order, all or nothing: on an error the resource is left unchanged.
pub fn apply_patch(
    resource: &mut Value,
    ops: &[PatchOp],
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let mut work = resource.clone();
    let Some(fields) = work.as_object_mut() else {
        return Err(ScimError::invalid_syntax(
            "the resource to patch is not a JSON object",
        ));
    };
    for (i, op) in ops.iter().enumerate() {
        apply_op(fields, op, schema).map_err(|e| in_operation(i, e))?;
    }
    *resource = work;
    Ok(())
}

/// What a path names.
enum Resolution<'p> {
    /// A bare schema URN: the value holds attributes of that schema.
    Schema(Container),
    Attr(Target<'p>),
}

/// A resolved target with what else an operation on it needs.
struct Spot<'p> {
    target: Target<'p>,
    filter: Option<&'p Filter>,
    /// The path or key as sent, for error details.
    label: &'p str,
}

fn apply_op(
    res: &mut Map<String, Value>,
    op: &PatchOp,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let Some(path) = &op.path else {
        // PatchOp is public: check again what parse_patch checks.
        return match (op.op, &op.value) {
            (OpKind::Remove, _) => Err(no_target()),
            (_, Some(Value::Object(fields))) => apply_fields(res, None, fields, op.op, schema),
            (kind, _) => Err(pathless_needs_object(kind)),
        };
    };
    match resolve_path(path, schema)? {
        Resolution::Schema(container) => apply_schema(res, container, op, schema),
        Resolution::Attr(target) => {
            let spot = Spot {
                target,
                filter: path.filter.as_ref(),
                label: &path.text,
            };
            match (op.op, &op.value) {
                (OpKind::Remove, value) => remove(res, &spot, value.as_ref(), schema),
                (kind, Some(value)) => set(res, &spot, value, kind, schema),
                (kind, None) => Err(ScimError::invalid_value(format!(
                    "{} needs a \"value\"",
                    kind.as_str()
                ))),
            }
        }
    }
}

/// Resolve an explicit path: unknown → invalidPath, read-only → mutability.
fn resolve_path<'p>(path: &'p PatchPath, schema: &UserSchema) -> Result<Resolution<'p>, ScimError> {
    if path.filter.is_none()
        && let Some(container) = schema.container_of(&path.text)
    {
        return Ok(Resolution::Schema(container));
    }
    let target = filter::resolve(schema, &path.attr).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "'{}' is not an attribute of the User resource",
            path.text
        ))
    })?;
    if target.attr.read_only || matches!(target.sub, Sub::Known(def) if def.read_only) {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("'{}' is read-only", path.text),
        ));
    }
    if let Some(value_filter) = &path.filter {
        if !filter::is_multi(target.attr) {
            return Err(ScimError::invalid_path(format!(
                "'{}' is not multi-valued, so '{}' cannot select values of it",
                target.attr.name, path.text
            )));
        }
        filter::check_element(value_filter, target.attr)
            .map_err(|e| ScimError::invalid_path(e.detail))?;
    }
    Ok(Resolution::Attr(target))
}

/// An operation whose path is a bare schema URN.
fn apply_schema(
    res: &mut Map<String, Value>,
    container: Container,
    op: &PatchOp,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let urn = schema.urn(container);
    match (op.op, &op.value) {
        (OpKind::Remove, _) | (_, Some(Value::Null)) => {
            if container == Container::Core {
                return Err(ScimError::invalid_path("the core schema cannot be removed"));
            }
            remove_ci(res, urn);
            Ok(())
        }
        (kind, Some(Value::Object(fields))) => {
            apply_fields(res, Some(container), fields, kind, schema)
        }
        _ => Err(ScimError::invalid_value(format!(
            "'{urn}' expects an object of its attributes"
        ))),
    }
}

/// Add or replace each key of an object as if it were a path (Okta and Entra send path-less
/// operations, with dotted and URN-prefixed keys). Inside a schema's object (`container`),
/// keys are that schema's attributes. Unknown and read-only keys are ignored, as in a POST
/// or PUT body.
fn apply_fields(
    res: &mut Map<String, Value>,
    container: Option<Container>,
    fields: &Map<String, Value>,
    op: OpKind,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    for (key, value) in fields {
        if container.is_none() {
            if ["schemas", "id", "meta"]
                .iter()
                .any(|k| key.eq_ignore_ascii_case(k))
            {
                continue;
            }
            if let Some(inner) = schema.container_of(key) {
                match value {
                    Value::Object(inner_fields) => {
                        apply_fields(res, Some(inner), inner_fields, op, schema)?;
                    }
                    Value::Null => {}
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "'{key}' expects an object of its attributes"
                        )));
                    }
                }
                continue;
            }
        }
        let has_urn = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        let text = match container {
            Some(c) if !has_urn => format!("{}:{key}", schema.urn(c)),
            _ => key.clone(),
        };
        let Ok(path) = PatchPath::parse(&text) else {
            continue;
        };
        let Ok(Resolution::Attr(target)) = resolve_path(&path, schema) else {
            continue;
        };
        let spot = Spot {
            target,
            filter: path.filter.as_ref(),
            label: key,
        };
        set(res, &spot, value, op, schema)?;
    }
    Ok(())
}

fn is_manager(target: &Target) -> bool {
    target.container == Container::Enterprise && target.attr.name == "manager"
}

/// add or replace (they differ only for multi-valued attributes without a filter).
fn set(
    res: &mut Map<String, Value>,
    spot: &Spot,
    value: &Value,
    op: OpKind,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let Target {
        container,
        attr,
        sub,
    } = spot.target;
    if is_manager(&spot.target) {
        return set_manager(res, spot, value, schema);
    }
    if filter::is_multi(attr) {
        return set_multi(res, spot, value, op, schema);
    }
    match sub {
        Sub::None if attr.kind == Kind::Complex => set_complex(res, spot, value, schema)?,
        Sub::None => {
            let value = normalize(attr, value, spot.label)?;
            store(res, container, attr.name, value, schema);
        }
        Sub::Known(def) => {
            let value = normalize(def, value, spot.label)?;
            store_sub(
                res,
                container,
                attr.name,
                SubKey::Canonical(def.name),
                value,
                schema,
            );
        }
        Sub::Open(name) => {
            let value = normalize_open(attr, value, spot.label)?;
            store_sub(res, container, attr.name, SubKey::Open(name), value, schema);
        }
    }
    Ok(())
}

/// A single-valued complex attribute (`name`, `customFields`): the given sub-attributes are
/// set or, when null or "", removed; the others are left as they are (RFC 7644 §3.5.2.3).
fn set_complex(
    res: &mut Map<String, Value>,
    spot: &Spot,
    value: &Value,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let Target {
        container, attr, ..
    } = spot.target;
    let fields = match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Object(fields) => Some(fields),
        other => {
            return Err(ScimError::invalid_value(format!(
                "'{}' expects an object, not {}",
                spot.label,
                json_kind(other)
            )));
        }
    };
    let Some(fields) = fields else {
        store(res, container, attr.name, None, schema);
        return Ok(());
    };
    for (key, value) in fields {
        let label = format!("{}.{key}", spot.label);
        if filter::is_open(attr) {
            let value = normalize_open(attr, value, &label)?;
            store_sub(res, container, attr.name, SubKey::Open(key), value, schema);
        } else if let Some(def) = attr.sub_attr(key)
            && !def.read_only
        {
            let value = normalize(def, value, &label)?;
            store_sub(
                res,
                container,
                attr.name,
                SubKey::Canonical(def.name),
                value,
                schema,
            );
        }
        // Other keys are unknown sub-attributes: ignored, as in a POST body.
    }
    Ok(())
}

/// The manager is stored as `{"value": id}` and nothing else; it arrives as a bare id, as
/// `{"value": id}`, or (Entra) as a one-element array of that. "" and null remove it.
fn set_manager(
    res: &mut Map<String, Value>,
    spot: &Spot,
    value: &Value,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let id = match spot.target.sub {
        Sub::None => manager_id(value, spot.label, 2)?,
        Sub::Known(def) if def.name == "value" => manager_id(value, spot.label, 0)?,
        // `$ref` and `displayName` are not stored, and would make the manager malformed.
        Sub::Known(_) | Sub::Open(_) => return Ok(()),
    };
    if let Some(id) = id {
        let manager = id.map(|id| json!({ "value": id }));
        store(
            res,
            spot.target.container,
            spot.target.attr.name,
            manager,
            schema,
        );
    }
    Ok(())
}

/// The manager's id in a value: `Some(None)` removes the manager, `None` leaves it as it is
/// (an object without `value`). `depth` 0 accepts a string or null, 1 also an object, 2 also
/// a one-element array.
fn manager_id(value: &Value, label: &str, depth: u8) -> Result<Option<Option<String>>, ScimError> {
    match value {
        Value::Null => Ok(Some(None)),
        Value::String(id) => Ok(Some((!id.is_empty()).then(|| id.clone()))),
        Value::Object(fields) if depth >= 1 => match field(fields, "value") {
            None => Ok(None),
            Some(inner) => manager_id(inner, label, 0),
        },
        Value::Array(items) if depth >= 2 && items.len() <= 1 => match items.first() {
            None => Ok(Some(None)),
            Some(item) => manager_id(item, label, 1),
        },
        other => Err(ScimError::invalid_value(format!(
            "'{label}' expects the manager's id, as a string or {{\"value\": \"<id>\"}}, not {}",
            json_kind(other)
        ))),
    }
}

/// add/replace on a multi-valued attribute.
fn set_multi(
    res: &mut Map<String, Value>,
    spot: &Spot,
    value: &Value,
    op: OpKind,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let Target {
        container, attr, ..
    } = spot.target;
    let current = elements_of(res, container, attr, schema);
    let next = if spot.filter.is_none() && matches!(spot.target.sub, Sub::None) {
        let new = new_elements(attr, value, spot.label)?;
        match op {
            OpKind::Replace => new,
            _ => add_by_type(current, new),
        }
    } else {
        update_matching(current, spot, value)?
    };
    write_elements(res, container, attr.name, next, schema);
    Ok(())
}

/// The elements in a value for a multi-valued attribute: an array, or one object.
fn new_elements(attr: &AttrDef, value: &Value, label: &str) -> Result<Vec<Value>, ScimError> {
    let items = match value {
        Value::Null => &[],
        Value::String(s) if s.is_empty() => &[],
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.extend(normalize_element(attr, item, label)?);
    }
    Ok(out)
}

/// One element: its known sub-attributes, shapes checked and booleans converted; unknown
/// ones dropped. Elements of attributes rollcall does not store are kept as they are.
fn normalize_element(
    attr: &AttrDef,
    item: &Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if filter::is_open(attr) {
        return Ok((!item.is_null()).then(|| item.clone()));
    }
    let Value::Object(fields) = item else {
        return Err(ScimError::invalid_value(format!(
            "'{label}' expects objects such as {{\"value\": \"…\", \"type\": \"work\"}}, not {}",
            json_kind(item)
        )));
    };
    let mut out = Map::new();
    for (key, value) in fields {
        if let Some(def) = attr.sub_attr(key)
            && let Some(value) = normalize(def, value, &format!("{}.{}", attr.name, def.name))?
        {
            out.insert(def.name.to_owned(), value);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// add without a filter: rollcall keeps one value per type, and Entra re-adds the work email
/// on every change, so a new element replaces the one of the same `type`.
fn add_by_type(current: Vec<Value>, new: Vec<Value>) -> Vec<Value> {
    let mut out = current;
    for element in new {
        let same_type = type_of(&element).and_then(|t| {
            out.iter()
                .position(|e| type_of(e).is_some_and(|u| u.eq_ignore_ascii_case(t)))
        });
        match same_type {
            Some(i) => out[i] = element,
            None if !out.contains(&element) => out.push(element),
            None => {}
        }
    }
    out
}

fn type_of(element: &Value) -> Option<&str> {
    filter::get_ci(element, "type").and_then(Value::as_str)
}

/// What a filtered add/replace does to each selected element.
enum Change<'a> {
    Set(&'a str, Value),
    Clear(&'a str),
    Merge(Map<String, Value>),
}

impl Change<'_> {
    fn apply(&self, element: &mut Map<String, Value>) {
        match self {
            Change::Set(key, value) => put(element, key, value.clone()),
            Change::Clear(key) => remove_ci(element, key),
            Change::Merge(fields) => {
                for (key, value) in fields {
                    put(element, key, value.clone());
                }
            }
        }
    }

    /// A cleared element is dropped once its value is gone, or once nothing but its type or
    /// primary flag is left: such an element says nothing.
    fn drops(&self, element: &Map<String, Value>) -> bool {
        let Change::Clear(key) = self else {
            return false;
        };
        key.eq_ignore_ascii_case("value")
            || element
                .keys()
                .all(|k| k.eq_ignore_ascii_case("type") || k.eq_ignore_ascii_case("primary"))
    }
}

/// add/replace with a value filter, or with a sub-attribute and no filter (all elements):
/// change the selected elements; if none is selected, create one from the filter's `eq`
/// comparisons (Entra adds `emails[type eq "work"].value` to a user without emails).
fn update_matching(
    current: Vec<Value>,
    spot: &Spot,
    value: &Value,
) -> Result<Vec<Value>, ScimError> {
    let attr = spot.target.attr;
    let change = match spot.target.sub {
        Sub::Known(def) => match normalize(def, value, spot.label)? {
            Some(value) => Change::Set(def.name, value),
            None => Change::Clear(def.name),
        },
        Sub::Open(name) => match normalize_open(attr, value, spot.label)? {
            Some(value) => Change::Set(name, value),
            None => Change::Clear(name),
        },
        Sub::None => {
            let item = match value {
                Value::Array(items) => match items.as_slice() {
                    [only] => only,
                    _ => value,
                },
                other => other,
            };
            if !item.is_object() {
                return Err(ScimError::invalid_value(format!(
                    "'{}' expects an object, not {}",
                    spot.label,
                    json_kind(item)
                )));
            }
            match normalize_element(attr, item, spot.label)? {
                Some(Value::Object(fields)) => Change::Merge(fields),
                _ => return Ok(current),
            }
        }
    };
    let mut matched = false;
    let mut out = Vec::with_capacity(current.len() + 1);
    for mut element in current {
        if spot
            .filter
            .is_none_or(|f| filter::matches_element(f, &element, attr))
        {
            matched = true;
            if let Value::Object(fields) = &mut element {
                change.apply(fields);
                if change.drops(fields) {
                    continue;
                }
            }
        }
        out.push(element);
    }
    if !matched && !matches!(change, Change::Clear(_)) {
        let mut fields = template(spot.filter, attr, spot.label)?;
        change.apply(&mut fields);
        out.push(Value::Object(fields));
    }
    Ok(out)
}

/// A new element made from the `eq` comparisons of a value filter's top-level `and` chain:
/// `[type eq "work"]` gives `{"type": "work"}`.
fn template(
    value_filter: Option<&Filter>,
    attr: &AttrDef,
    label: &str,
) -> Result<Map<String, Value>, ScimError> {
    let mut fields = Map::new();
    let Some(value_filter) = value_filter else {
        return Ok(fields);
    };
    let mut conjuncts = Vec::new();
    filter::flatten_and(value_filter, &mut conjuncts);
    for conjunct in conjuncts {
        let Filter::Compare {
            path,
            value_filter: None,
            op: CompareOp::Eq,
            value,
        } = conjunct
        else {
            continue;
        };
        if path.urn.is_some() || path.sub.is_some() {
            continue;
        }
        let def = attr.sub_attr(&path.name);
        let key = match def {
            Some(def) => def.name.to_owned(),
            None if filter::is_open(attr) => path.name.clone(),
            None => continue,
        };
        let kind = def.map_or(Kind::String, |d| d.kind);
        let value = match (value, kind) {
            (CompValue::String(s), Kind::Boolean) => filter::parse_bool(s).map(Value::Bool),
            (CompValue::String(s), _) => Some(Value::String(s.clone())),
            (CompValue::Bool(b), _) => Some(Value::Bool(*b)),
            (CompValue::Number { number, .. }, Kind::Boolean | Kind::Complex) => {
                Some(Value::Number(number.clone()))
            }
            (CompValue::Number { text, .. }, _) => Some(Value::String(text.clone())),
            (CompValue::Null, _) => None,
        };
        if let Some(value) = value {
            fields.insert(key, value);
        }
    }
    if fields.is_empty() {
        return Err(ScimError::bad_request(
            ScimType::NoTarget,
            format!(
                "no value matches '{label}', and its filter has no 'eq' comparison to create one from"
            ),
        ));
    }
    Ok(fields)
}

fn remove(
    res: &mut Map<String, Value>,
    spot: &Spot,
    value: Option<&Value>,
    schema: &UserSchema,
) -> Result<(), ScimError> {
    let Target {
        container,
        attr,
        sub,
    } = spot.target;
    if is_manager(&spot.target) {
        let whole = match sub {
            Sub::None => true,
            Sub::Known(def) => def.name == "value",
            Sub::Open(_) => false,
        };
        if whole {
            store(res, container, attr.name, None, schema);
        }
        return Ok(());
    }
    if filter::is_multi(attr) {
        let current = elements_of(res, container, attr, schema);
        let next = match (spot.filter, sub) {
            // Entra names the values to remove in `value` (as it does for group members).
            (None, Sub::None) => match value {
                Some(listed) if !listed.is_null() => remove_listed(attr, current, listed),
                _ => Vec::new(),
            },
            (value_filter, sub) => current
                .into_iter()
                .filter_map(|mut element| {
                    if !value_filter.is_none_or(|f| filter::matches_element(f, &element, attr)) {
                        return Some(element);
                    }
                    let key = match sub {
                        Sub::None => return None,
                        Sub::Known(def) => def.name,
                        Sub::Open(name) => name,
                    };
                    if let Value::Object(fields) = &mut element {
                        let change = Change::Clear(key);
                        change.apply(fields);
                        if change.drops(fields) {
                            return None;
                        }
                    }
                    Some(element)
                })
                .collect(),
        };
        write_elements(res, container, attr.name, next, schema);
        return Ok(());
    }
    match sub {
        Sub::None => store(res, container, attr.name, None, schema),
        Sub::Known(def) => store_sub(
            res,
            container,
            attr.name,
            SubKey::Canonical(def.name),
            None,
            schema,
        ),
        Sub::Open(name) => store_sub(res, container, attr.name, SubKey::Open(name), None, schema),
    }
    Ok(())
}

/// remove with a value: drop the elements whose `value` is listed.
fn remove_listed(attr: &AttrDef, current: Vec<Value>, listed: &Value) -> Vec<Value> {
    let value_of = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(_) => filter::get_ci(v, "value")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
    };
    let listed: Vec<String> = match listed {
        Value::Array(items) => items.iter().filter_map(value_of).collect(),
        other => value_of(other).into_iter().collect(),
    };
    let case_exact = attr.sub_attr("value").is_some_and(|d| d.case_exact);
    let same = |a: &str, b: &str| {
        if case_exact {
            a == b
        } else {
            a.to_lowercase() == b.to_lowercase()
        }
    };
    current
        .into_iter()
        .filter(|element| {
            let value = filter::get_ci(element, "value").and_then(Value::as_str);
            !value.is_some_and(|v| listed.iter().any(|l| same(l, v)))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Values

/// A value checked against the shape an attribute expects. `None` means clear it (null or
/// ""). Booleans may arrive as "True"/"False" (Entra).
fn normalize(def: &AttrDef, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    match (def.kind, value) {
        (_, Value::Null) => Ok(None),
        (_, Value::String(s)) if s.is_empty() => Ok(None),
        (Kind::Boolean, Value::Bool(_)) => Ok(Some(value.clone())),
        (Kind::Boolean, Value::String(s)) => match filter::parse_bool(s) {
            Some(b) => Ok(Some(Value::Bool(b))),
            None => Err(ScimError::invalid_value(format!(
                "'{label}' expects a boolean (true or false), not \"{}\"",
                s.chars().take(40).collect::<String>()
            ))),
        },
        (Kind::Boolean, other) => Err(ScimError::invalid_value(format!(
            "'{label}' expects a boolean (true or false), not {}",
            json_kind(other)
        ))),
        (Kind::Complex, Value::Object(_)) => Ok(Some(value.clone())),
        (Kind::Complex, other) => Err(ScimError::invalid_value(format!(
            "'{label}' expects an object, not {}",
            json_kind(other)
        ))),
        (_, Value::String(_)) => Ok(Some(value.clone())),
        (_, other) => Err(ScimError::invalid_value(format!(
            "'{label}' expects a string, not {}",
            json_kind(other)
        ))),
    }
}

/// A sub-attribute of an open attribute: `customFields` holds strings; the attributes
/// rollcall does not store take anything.
fn normalize_open(attr: &AttrDef, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(_) => Ok(Some(value.clone())),
        other if attr.stored => Err(ScimError::invalid_value(format!(
            "'{label}' expects a string, not {}",
            json_kind(other)
        ))),
        other => Ok(Some(other.clone())),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON access: keys matched without regard to letter case; keys created with the schema's
// spelling.

fn field<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn key_of(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn get_mut_ci<'m>(map: &'m mut Map<String, Value>, name: &str) -> Option<&'m mut Value> {
    let key = key_of(map, name)?;
    map.get_mut(&key)
}

fn remove_ci(map: &mut Map<String, Value>, name: &str) {
    map.retain(|key, _| !key.eq_ignore_ascii_case(name));
}

/// Set `name`, dropping the same key spelt in another letter case.
fn put(map: &mut Map<String, Value>, name: &str, value: Value) {
    remove_ci(map, name);
    map.insert(name.to_owned(), value);
}

/// The object under `name`, created (or re-keyed to `name`'s spelling) as needed.
fn object_entry<'m>(map: &'m mut Map<String, Value>, name: &str) -> &'m mut Map<String, Value> {
    if let Some(existing) = key_of(map, name)
        && existing != name
        && let Some(value) = map.remove(&existing)
    {
        map.insert(name.to_owned(), value);
    }
    let slot = map.entry(name).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(object) => object,
        _ => unreachable!("the slot was made an object above"),
    }
}

/// The object holding a container's attributes, if the resource has it.
fn container_ref<'m>(
    res: &'m Map<String, Value>,
    container: Container,
    schema: &UserSchema,
) -> Option<&'m Map<String, Value>> {
    match container {
        Container::Core => Some(res),
        other => field(res, schema.urn(other))?.as_object(),
    }
}

fn container_mut<'m>(
    res: &'m mut Map<String, Value>,
    container: Container,
    schema: &UserSchema,
) -> Option<&'m mut Map<String, Value>> {
    match container {
        Container::Core => Some(res),
        other => get_mut_ci(res, schema.urn(other))?.as_object_mut(),
    }
}

/// The object holding a container's attributes, an extension's created under its URN.
fn container_entry<'m>(
    res: &'m mut Map<String, Value>,
    container: Container,
    schema: &UserSchema,
) -> &'m mut Map<String, Value> {
    match container {
        Container::Core => res,
        other => object_entry(res, schema.urn(other)),
    }
}

/// Drop an extension object left empty (absent values are omitted).
fn prune(res: &mut Map<String, Value>, container: Container, schema: &UserSchema) {
    if container == Container::Core {
        return;
    }
    let urn = schema.urn(container);
    if field(res, urn).is_some_and(|v| v.as_object().is_some_and(Map::is_empty)) {
        remove_ci(res, urn);
    }
}

/// Set an attribute, or remove it on `None`.
fn store(
    res: &mut Map<String, Value>,
    container: Container,
    name: &str,
    value: Option<Value>,
    schema: &UserSchema,
) {
    match value {
        Some(value) => put(container_entry(res, container, schema), name, value),
        None => {
            if let Some(holder) = container_mut(res, container, schema) {
                remove_ci(holder, name);
            }
            prune(res, container, schema);
        }
    }
}

/// A sub-attribute key: the schema's spelling, or an operator-defined name, whose stored
/// spelling is kept when it differs only in letter case.
#[derive(Clone, Copy)]
enum SubKey<'k> {
    Canonical(&'k str),
    Open(&'k str),
}

/// Set a sub-attribute of a single-valued complex attribute, or remove it on `None` (and the
/// attribute once empty).
fn store_sub(
    res: &mut Map<String, Value>,
    container: Container,
    attr: &str,
    key: SubKey,
    value: Option<Value>,
    schema: &UserSchema,
) {
    let name = match key {
        SubKey::Canonical(name) | SubKey::Open(name) => name,
    };
    match value {
        Some(value) => {
            let object = object_entry(container_entry(res, container, schema), attr);
            let stored = match key {
                SubKey::Open(name) => key_of(object, name).unwrap_or_else(|| name.to_owned()),
                SubKey::Canonical(name) => name.to_owned(),
            };
            put(object, &stored, value);
        }
        None => {
            if let Some(holder) = container_mut(res, container, schema) {
                let emptied = match get_mut_ci(holder, attr) {
                    Some(Value::Object(object)) => {
                        remove_ci(object, name);
                        object.is_empty()
                    }
                    _ => false,
                };
                if emptied {
                    remove_ci(holder, attr);
                }
            }
            prune(res, container, schema);
        }
    }
}

/// The current elements of a multi-valued attribute (a lone object counts as one).
fn elements_of(
    res: &Map<String, Value>,
    container: Container,
    attr: &AttrDef,
    schema: &UserSchema,
) -> Vec<Value> {
    match container_ref(res, container, schema).and_then(|holder| field(holder, attr.name)) {
        Some(Value::Array(items)) => items.clone(),
        Some(object @ Value::Object(_)) => vec![object.clone()],
        _ => Vec::new(),
    }
}

/// Store the elements of a multi-valued attribute; none removes it.
fn write_elements(
    res: &mut Map<String, Value>,
    container: Container,
    name: &str,
    elements: Vec<Value>,
    schema: &UserSchema,
) {
    let value = (!elements.is_empty()).then_some(Value::Array(elements));
    store(res, container, name, value, schema);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{CORE_USER, DEFAULT_CUSTOM_URN, ENTERPRISE_USER};

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
                "customFields": {"costCentre": "C1"}
            },
            "meta": {
                "resourceType": "User",
                "created": "2024-01-02T03:04:05Z",
                "lastModified": "2024-01-02T03:04:05Z",
                "location": "http://h/scim/v2/Users/0190aBc",
                "version": "W/\"3\""
            }
        })
    }

    /// A user with only the core attributes.
    fn bare() -> Value {
        json!({"schemas": [CORE_USER], "id": "0190x", "userName": "bob", "active": true})
    }

    fn body(operations: Value) -> Value {
        json!({"schemas": [PATCH_OP_URN], "Operations": operations})
    }

    fn try_patch(resource: &mut Value, operations: Value) -> Result<(), ScimError> {
        let ops = parse_patch(&body(operations))?;
        apply_patch(resource, &ops, &UserSchema::default())
    }

    fn patch(mut resource: Value, operations: Value) -> Value {
        try_patch(&mut resource, operations).unwrap_or_else(|e| panic!("{e}"));
        resource
    }

    /// The error, after checking that the resource was left unchanged.
    fn patch_err(resource: Value, operations: Value) -> ScimError {
        let mut work = resource.clone();
        let err = try_patch(&mut work, operations).expect_err("the patch should fail");
        assert_eq!(
            work, resource,
            "a failed patch must leave the resource unchanged"
        );
        assert_eq!(err.status, 400);
        err
    }

    fn parse_err(body: Value) -> ScimError {
        let err = parse_patch(&body).expect_err("the body should be refused");
        assert_eq!(err.status, 400);
        err
    }

    fn ext(resource: &Value) -> &Value {
        &resource[ENTERPRISE_USER]
    }

    fn custom(resource: &Value) -> &Value {
        &resource[DEFAULT_CUSTOM_URN]
    }

    // --- parse_patch ---

    #[test]
    fn operations_are_read_in_any_letter_case() {
        let ops = parse_patch(&json!({
            "schemas": [PATCH_OP_URN],
            "operations": [
                {"OP": "Add", "Path": "title", "VALUE": "x"},
                {"op": "replace", "value": {"active": false}},
                {"op": "REMOVE", "path": " emails[type eq \"work\"].value "},
            ]
        }))
        .expect("valid");
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].op, OpKind::Add);
        assert_eq!(ops[0].path.as_ref().map(|p| p.text.as_str()), Some("title"));
        assert_eq!(ops[0].value, Some(json!("x")));
        assert_eq!(ops[1].op, OpKind::Replace);
        assert_eq!(ops[1].path, None);
        let path = ops[2].path.as_ref().expect("path");
        assert_eq!(ops[2].op, OpKind::Remove);
        assert_eq!(path.text, "emails[type eq \"work\"].value");
        assert_eq!(
            (path.attr.name.as_str(), path.attr.sub.as_deref()),
            ("emails", Some("value"))
        );
        assert!(path.filter.is_some());
        // Without "schemas", and with an empty path (treated as none).
        let ops = parse_patch(
            &json!({"Operations": [{"op": "add", "path": "", "value": {"title": "x"}}]}),
        )
        .expect("valid");
        assert_eq!(ops[0].path, None);
    }

    #[test]
    fn malformed_bodies_are_invalid_syntax() {
        let syntax = |body: Value, needle: &str| {
            let err = parse_err(body);
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidSyntax),
                "{}",
                err.detail
            );
            assert!(
                err.detail.contains(needle),
                "{} does not say {needle}",
                err.detail
            );
        };
        syntax(json!([]), "JSON object");
        syntax(json!({"schemas": [PATCH_OP_URN]}), "no \"Operations\"");
        syntax(json!({"Operations": {"op": "add"}}), "must be an array");
        syntax(json!({"Operations": []}), "empty");
        let many: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
            .collect();
        syntax(json!({"Operations": many}), "1001 operations");
        let ok: Vec<Value> = (0..MAX_OPERATIONS)
            .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
            .collect();
        assert_eq!(
            parse_patch(&json!({"Operations": ok})).map(|o| o.len()),
            Ok(MAX_OPERATIONS)
        );
        syntax(
            json!({"schemas": [CORE_USER], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
            PATCH_OP_URN,
        );
        syntax(
            json!({"schemas": "nope", "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
            PATCH_OP_URN,
        );
        syntax(body(json!([{"op": "move", "path": "title"}])), "\"move\"");
        syntax(
            body(json!([{"path": "title", "value": "x"}])),
            "\"op\" is missing",
        );
        syntax(
            body(json!([{"op": 1, "path": "title", "value": "x"}])),
            "\"op\" is missing",
        );
        syntax(body(json!(["add"])), "JSON object");
        let err = parse_err(body(
            json!([{"op": "add", "path": "title", "value": "x"}, {"op": "copy"}]),
        ));
        assert!(err.detail.starts_with("Operations[1]: "), "{}", err.detail);
    }

    #[test]
    fn operation_fields_are_checked() {
        let err = parse_err(body(json!([{"op": "remove"}])));
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
        let err = parse_err(body(json!([{"op": "add", "path": "title"}])));
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        let err = parse_err(body(json!([{"op": "replace", "value": "x"}])));
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(err.detail.contains("object"));
        let err = parse_err(body(json!([{"op": "replace", "value": null}])));
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        let err = parse_err(body(json!([{"op": "add", "path": 5, "value": "x"}])));
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        let err = parse_err(body(
            json!([{"op": "add", "path": "emails[type eq ", "value": "x"}]),
        ));
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        assert!(err.detail.contains("character"), "{}", err.detail);
        let err = parse_err(body(
            json!([{"op": "add", "path": "name givenName", "value": "x"}]),
        ));
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        // remove may carry a value; add may carry null (clears).
        parse_patch(&body(
            json!([{"op": "remove", "path": "emails", "value": [{"value": "a"}]}]),
        ))
        .expect("valid");
        parse_patch(&body(
            json!([{"op": "add", "path": "title", "value": null}]),
        ))
        .expect("valid");
    }

    // --- Entra ID ---

    #[test]
    fn entra_replaces_active_with_a_string() {
        let user = patch(
            ann(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(user["active"], json!(false));
        let user = patch(
            user,
            json!([{"op": "Replace", "path": "active", "value": "TRUE"}]),
        );
        assert_eq!(user["active"], json!(true));
        let err = patch_err(
            ann(),
            json!([{"op": "Replace", "path": "active", "value": "maybe"}]),
        );
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(
            err.detail.contains("'active' expects a boolean"),
            "{}",
            err.detail
        );
        let err = patch_err(
            ann(),
            json!([{"op": "Replace", "path": "active", "value": 1}]),
        );
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn entra_adds_the_work_email_creating_the_element() {
        let op =
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "bob@x.org"}]);
        let user = patch(bare(), op.clone());
        assert_eq!(
            user["emails"],
            json!([{"type": "work", "value": "bob@x.org"}])
        );
        // On a user who has one, the value changes and no element is added.
        let user = patch(ann(), op);
        assert_eq!(
            user["emails"],
            json!([{"value": "bob@x.org", "type": "work", "primary": true}])
        );
        // Primary as a string.
        let user = patch(
            bare(),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].primary", "value": "True"}]),
        );
        assert_eq!(user["emails"], json!([{"type": "work", "primary": true}]));
    }

    #[test]
    fn entra_replaces_the_given_name() {
        let user = patch(
            ann(),
            json!([{"op": "Replace", "path": "name.givenName", "value": "Anne"}]),
        );
        assert_eq!(
            user["name"],
            json!({"givenName": "Anne", "familyName": "Lee"})
        );
        let user = patch(
            bare(),
            json!([{"op": "Add", "path": "name.familyName", "value": "Doe"}]),
        );
        assert_eq!(user["name"], json!({"familyName": "Doe"}));
    }

    #[test]
    fn entra_pathless_replace_with_dotted_and_urn_keys() {
        let user = patch(
            ann(),
            json!([{"op": "Replace", "value": {
                "name.givenName": "X",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7",
                "emails[type eq \"work\"].value": "x@y.org",
                "active": "False",
                "displayName": "Ann X",
                "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:foo": "ignored",
                "notAnAttribute": 1
            }}]),
        );
        assert_eq!(user["name"]["givenName"], "X");
        assert_eq!(user["name"]["familyName"], "Lee");
        assert_eq!(ext(&user)["employeeNumber"], "7");
        assert_eq!(ext(&user)["department"], "R&D");
        assert_eq!(user["emails"][0]["value"], "x@y.org");
        assert_eq!(user["active"], false);
        assert_eq!(user["displayName"], "Ann X");
        assert!(user.get("notAnAttribute").is_none());
        assert!(
            user.get("urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:foo")
                .is_none()
        );
    }

    #[test]
    fn manager_as_a_bare_id_an_object_or_an_array() {
        let path = format!("{ENTERPRISE_USER}:manager");
        for value in [
            json!("0190New"),
            json!({"value": "0190New"}),
            json!([{"$ref": null, "value": "0190New"}]),
            json!({"value": "0190New", "displayName": "Neil"}),
        ] {
            let user = patch(bare(), json!([{"op": "Add", "path": path, "value": value}]));
            assert_eq!(
                ext(&user)["manager"],
                json!({"value": "0190New"}),
                "{value}"
            );
            let user = patch(
                ann(),
                json!([{"op": "Replace", "path": "manager", "value": value}]),
            );
            assert_eq!(
                ext(&user)["manager"],
                json!({"value": "0190New"}),
                "{value}"
            );
        }
        let user = patch(
            bare(),
            json!([{"op": "Add", "path": "manager.value", "value": "0190New"}]),
        );
        assert_eq!(ext(&user)["manager"], json!({"value": "0190New"}));
        // An object without a value leaves the manager; its other sub-attributes are ignored.
        let user = patch(
            ann(),
            json!([{"op": "Replace", "path": "manager", "value": {"displayName": "X"}}]),
        );
        assert_eq!(ext(&user)["manager"], json!({"value": "0190Boss"}));
        let user = patch(
            ann(),
            json!([{"op": "Replace", "path": "manager.displayName", "value": "X"}]),
        );
        assert_eq!(ext(&user)["manager"], json!({"value": "0190Boss"}));
        let err = patch_err(
            ann(),
            json!([{"op": "Replace", "path": "manager", "value": 42}]),
        );
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(err.detail.contains("manager"), "{}", err.detail);
    }

    #[test]
    fn manager_is_removed_by_empty_values_and_by_remove() {
        let path = format!("{ENTERPRISE_USER}:manager");
        for op in [
            json!({"op": "Add", "path": path, "value": ""}),
            json!({"op": "Replace", "path": path, "value": null}),
            json!({"op": "Replace", "path": path, "value": {"value": ""}}),
            json!({"op": "Replace", "path": path, "value": []}),
            json!({"op": "Replace", "path": "manager.value", "value": ""}),
            json!({"op": "Remove", "path": path}),
            json!({"op": "Remove", "path": "manager.value"}),
            json!({"op": "Remove", "path": path, "value": [{"value": "0190Boss"}]}),
        ] {
            let user = patch(ann(), json!([op]));
            assert!(ext(&user).get("manager").is_none(), "{op}");
            assert_eq!(ext(&user)["department"], "R&D");
        }
        // Removing the last attribute of an extension drops the extension object.
        let user = patch(
            bare(),
            json!([{"op": "Add", "path": "manager", "value": "m"}, {"op": "Remove", "path": "manager"}]),
        );
        assert_eq!(user, bare());
    }

    // --- Okta ---

    #[test]
    fn okta_pathless_replace_of_active() {
        let user = patch(
            ann(),
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        let mut expected = ann();
        expected["active"] = json!(false);
        assert_eq!(user, expected);
    }

    #[test]
    fn okta_replace_with_a_full_value_object() {
        let user = patch(
            ann(),
            json!([{"op": "replace", "value": {
                "schemas": [CORE_USER],
                "id": "hijack",
                "meta": {"created": "1999-01-01T00:00:00Z"},
                "userName": "ann.lee@example.com",
                "name": {"givenName": "Annie", "familyName": "Lee"},
                "emails": [{"primary": true, "value": "ann.lee@example.com", "type": "work"}],
                "phoneNumbers": {"value": "+44 7700 900999", "type": "mobile"},
                "locale": "en-GB",
                ENTERPRISE_USER: {"department": "Ops"},
                "shoeSize": 42
            }}]),
        );
        assert_eq!(user["id"], "0190aBc");
        assert_eq!(user["meta"], ann()["meta"]);
        assert_eq!(user["schemas"], ann()["schemas"]);
        assert_eq!(user["userName"], "ann.lee@example.com");
        assert_eq!(
            user["name"],
            json!({"givenName": "Annie", "familyName": "Lee"})
        );
        assert_eq!(
            user["emails"],
            json!([{"primary": true, "value": "ann.lee@example.com", "type": "work"}])
        );
        assert_eq!(
            user["phoneNumbers"],
            json!([{"value": "+44 7700 900999", "type": "mobile"}])
        );
        assert_eq!(user["locale"], "en-GB");
        assert_eq!(ext(&user)["department"], "Ops");
        assert_eq!(ext(&user)["employeeNumber"], "701");
        assert!(user.get("shoeSize").is_none());
    }

    // --- errors ---

    #[test]
    fn unknown_paths_are_invalid_path() {
        for path in [
            "shoeSize",
            "name.shoe",
            "urn:acme:User:title",
            "emails[shoe eq \"x\"].value",
            "emails[type eq \"work\"].shoe",
            "title[value eq \"x\"]",
            "schemas",
        ] {
            let err = patch_err(ann(), json!([{"op": "add", "path": path, "value": "x"}]));
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidPath),
                "{path}: {}",
                err.detail
            );
            let err = patch_err(ann(), json!([{"op": "remove", "path": path}]));
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidPath),
                "{path}: {}",
                err.detail
            );
        }
        let err = patch_err(
            ann(),
            json!([{"op": "add", "path": "shoeSize", "value": "x"}]),
        );
        assert_eq!(
            err.detail,
            "Operations[0]: 'shoeSize' is not an attribute of the User resource"
        );
    }

    #[test]
    fn read_only_paths_are_mutability_errors() {
        for path in [
            "id",
            "ID",
            "meta",
            "meta.created",
            "meta.version",
            &format!("{CORE_USER}:id"),
        ] {
            for op in ["add", "replace", "remove"] {
                let err = patch_err(ann(), json!([{"op": op, "path": path, "value": "x"}]));
                assert_eq!(err.scim_type, Some(ScimType::Mutability), "{op} {path}");
                assert!(err.detail.contains("read-only"));
            }
        }
    }

    #[test]
    fn a_failing_operation_leaves_the_resource_unchanged() {
        let err = patch_err(
            ann(),
            json!([
                {"op": "replace", "path": "title", "value": "Boss"},
                {"op": "remove", "path": "emails"},
                {"op": "replace", "path": "userName", "value": {"oops": 1}},
            ]),
        );
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(
            err.detail
                .starts_with("Operations[2]: 'userName' expects a string"),
            "{}",
            err.detail
        );
        // A resource that is not an object cannot be patched.
        let ops = parse_patch(&body(json!([{"op": "add", "path": "title", "value": "x"}])))
            .expect("valid");
        let mut not_object = json!([1]);
        assert!(apply_patch(&mut not_object, &ops, &UserSchema::default()).is_err());
        // Constructed operations are checked as parse_patch checks them.
        let mut user = ann();
        let remove = PatchOp {
            op: OpKind::Remove,
            path: None,
            value: None,
        };
        let err = apply_patch(&mut user, &[remove], &UserSchema::default()).expect_err("no target");
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn values_of_the_wrong_shape_are_invalid_value() {
        for (path, value, needle) in [
            (
                "userName",
                json!({"a": 1}),
                "'userName' expects a string, not an object",
            ),
            ("title", json!(5), "'title' expects a string, not a number"),
            (
                "title",
                json!(["Boss"]),
                "'title' expects a string, not an array",
            ),
            ("name", json!("Ann Lee"), "'name' expects an object"),
            (
                "name.givenName",
                json!(true),
                "'name.givenName' expects a string",
            ),
            ("emails", json!("a@b.c"), "'emails' expects objects"),
            (
                "emails",
                json!([{"value": 5}]),
                "'emails.value' expects a string",
            ),
            (
                "emails[type eq \"work\"]",
                json!("a@b.c"),
                "expects an object",
            ),
            (
                "emails[type eq \"work\"].primary",
                json!("yes"),
                "expects a boolean",
            ),
            ("customFields.costCentre", json!(12), "expects a string"),
            (
                "customFields",
                json!({"costCentre": {"x": 1}}),
                "'customFields.costCentre' expects a string",
            ),
            (ENTERPRISE_USER, json!("x"), "expects an object"),
        ] {
            let err = patch_err(
                ann(),
                json!([{"op": "replace", "path": path, "value": value}]),
            );
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{path}");
            assert!(err.detail.contains(needle), "{path}: {}", err.detail);
        }
        let err = patch_err(ann(), json!([{"op": "replace", "value": {"title": 5}}]));
        assert!(
            err.detail.contains("'title' expects a string"),
            "{}",
            err.detail
        );
        let err = patch_err(
            ann(),
            json!([{"op": "replace", "value": {ENTERPRISE_USER: 5}}]),
        );
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    // --- single-valued attributes ---

    #[test]
    fn null_or_empty_clears_and_remove_removes() {
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "title", "value": null}]),
        );
        assert!(user.get("title").is_none());
        let user = patch(ann(), json!([{"op": "add", "path": "title", "value": ""}]));
        assert!(user.get("title").is_none());
        let user = patch(ann(), json!([{"op": "remove", "path": "title"}]));
        assert!(user.get("title").is_none());
        let user = patch(ann(), json!([{"op": "remove", "path": "name.givenName"}]));
        assert_eq!(user["name"], json!({"familyName": "Lee"}));
        let user = patch(user, json!([{"op": "remove", "path": "name.familyName"}]));
        assert!(
            user.get("name").is_none(),
            "an emptied complex attribute is dropped"
        );
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "name", "value": {"givenName": null, "formatted": "A L"}}]),
        );
        assert_eq!(
            user["name"],
            json!({"familyName": "Lee", "formatted": "A L"})
        );
        // Removing what is absent is not an error.
        let user = patch(
            bare(),
            json!([{"op": "remove", "path": "title"}, {"op": "remove", "path": "department"}]),
        );
        assert_eq!(user, bare());
    }

    #[test]
    fn keys_are_matched_in_any_letter_case_and_written_canonically() {
        let shouty = json!({
            "USERNAME": "bob",
            "NAME": {"GIVENNAME": "Bob"},
            ENTERPRISE_USER.to_uppercase(): {"DEPARTMENT": "Ops"}
        });
        let user = patch(
            shouty,
            json!([
                {"op": "replace", "path": "UserName", "value": "rob"},
                {"op": "replace", "path": "name.givenName", "value": "Rob"},
                {"op": "replace", "path": "department", "value": "Eng"},
            ]),
        );
        assert_eq!(
            user,
            json!({"userName": "rob", "name": {"givenName": "Rob"}, ENTERPRISE_USER: {"department": "Eng"}})
        );
    }

    #[test]
    fn attributes_rollcall_ignores_are_accepted() {
        let user = patch(
            bare(),
            json!([
                {"op": "add", "path": "displayName", "value": "Bob"},
                {"op": "add", "path": "name.formatted", "value": "Bob B"},
                {"op": "add", "path": "preferredLanguage", "value": "en"},
                {"op": "add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
                {"op": "add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 555"},
                {"op": "add", "path": "costCenter", "value": "CC"},
                {"op": "add", "path": "roles", "value": [{"value": "admin"}]},
            ]),
        );
        assert_eq!(user["displayName"], "Bob");
        assert_eq!(user["name"]["formatted"], "Bob B");
        assert_eq!(user["preferredLanguage"], "en");
        assert_eq!(
            user["addresses"],
            json!([{"type": "work", "streetAddress": "1 Main St"}])
        );
        assert_eq!(
            user["phoneNumbers"],
            json!([{"type": "fax", "value": "+1 555"}])
        );
        assert_eq!(ext(&user)["costCenter"], "CC");
        assert_eq!(user["roles"], json!([{"value": "admin"}]));
        let user = patch(
            user,
            json!([{"op": "remove", "path": "addresses[type eq \"work\"].streetAddress"}]),
        );
        assert!(user.get("addresses").is_none());
    }

    // --- multi-valued attributes ---

    #[test]
    fn replace_without_a_filter_replaces_the_whole_array() {
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "phoneNumbers", "value": [{"value": "1", "type": "work"}]}]),
        );
        assert_eq!(
            user["phoneNumbers"],
            json!([{"value": "1", "type": "work"}])
        );
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "emails", "value": {"value": "b@x.org", "type": "work", "primary": "true", "junk": 1}}]),
        );
        assert_eq!(
            user["emails"],
            json!([{"value": "b@x.org", "type": "work", "primary": true}])
        );
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "emails", "value": []}]),
        );
        assert!(user.get("emails").is_none());
    }

    #[test]
    fn add_without_a_filter_appends_or_replaces_the_same_type() {
        let user = patch(
            ann(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@x.org", "type": "WORK"}]}]),
        );
        assert_eq!(
            user["emails"],
            json!([{"value": "new@x.org", "type": "WORK"}])
        );
        let user = patch(
            ann(),
            json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "3", "type": "home"}]}]),
        );
        assert_eq!(user["phoneNumbers"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            user["phoneNumbers"][2],
            json!({"value": "3", "type": "home"})
        );
        // An identical untyped element is not added twice.
        let op = json!([{"op": "add", "path": "phoneNumbers", "value": {"value": "9"}}]);
        let user = patch(patch(bare(), op.clone()), op);
        assert_eq!(user["phoneNumbers"], json!([{"value": "9"}]));
        // Path-less add merges the same way.
        let user = patch(
            ann(),
            json!([{"op": "add", "value": {"emails": [{"value": "z@x.org", "type": "work"}]}}]),
        );
        assert_eq!(
            user["emails"],
            json!([{"value": "z@x.org", "type": "work"}])
        );
    }

    #[test]
    fn filtered_paths_change_the_matching_elements() {
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+44 20 1234 5678"}]),
        );
        assert_eq!(user["phoneNumbers"][0]["value"], "+44 7700 900123");
        assert_eq!(user["phoneNumbers"][1]["value"], "+44 20 1234 5678");
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "5", "primary": "false"}}]),
        );
        assert_eq!(
            user["phoneNumbers"][0],
            json!({"value": "5", "type": "mobile", "primary": false})
        );
        let user = patch(
            bare(),
            json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"]", "value": [{"value": "5"}]}]),
        );
        assert_eq!(
            user["phoneNumbers"],
            json!([{"type": "mobile", "value": "5"}])
        );
        // Sub-attribute without a filter: every element, or a new one.
        let user = patch(
            bare(),
            json!([{"op": "add", "path": "emails.value", "value": "b@x.org"}]),
        );
        assert_eq!(user["emails"], json!([{"value": "b@x.org"}]));
        // A filter naming no value to create an element from.
        let err = patch_err(
            bare(),
            json!([{"op": "add", "path": "emails[value co \"x\"].type", "value": "work"}]),
        );
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
        // Clearing through a filter that matches nothing does nothing.
        let user = patch(
            bare(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": ""}]),
        );
        assert_eq!(user, bare());
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": null}]),
        );
        assert!(user.get("emails").is_none());
    }

    #[test]
    fn remove_on_multi_valued_attributes() {
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"work\"]"}]),
        );
        assert_eq!(
            user["phoneNumbers"],
            json!([{"value": "+44 7700 900123", "type": "mobile"}])
        );
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"mobile\"].value"}]),
        );
        assert_eq!(
            user["phoneNumbers"],
            json!([{"value": "+44 20 7946 0000", "type": "work"}])
        );
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
        );
        assert_eq!(
            user["emails"],
            json!([{"value": "ann@example.com", "type": "work"}])
        );
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        );
        assert_eq!(user, ann());
        let user = patch(ann(), json!([{"op": "remove", "path": "emails"}]));
        assert!(user.get("emails").is_none());
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
        );
        assert!(user.get("emails").is_none());
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "phoneNumbers[value sw \"+44 20\" or type eq \"mobile\"]"}]),
        );
        assert!(user.get("phoneNumbers").is_none());
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "phoneNumbers", "value": [{"value": "+44 20 7946 0000"}]}]),
        );
        assert_eq!(
            user["phoneNumbers"],
            json!([{"value": "+44 7700 900123", "type": "mobile"}])
        );
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": "emails", "value": "ANN@example.com"}]),
        );
        assert!(user.get("emails").is_none());
    }

    #[test]
    fn odd_resources_and_any_combination_do_not_panic() {
        let odd = json!({
            "userName": 5,
            "name": "Ann",
            "emails": "ann@example.com",
            "phoneNumbers": [1, null, {"value": 2}],
            ENTERPRISE_USER: 5,
            DEFAULT_CUSTOM_URN: {"customFields": "x"},
            "meta": []
        });
        let paths = [
            "title",
            "active",
            "name",
            "name.givenName",
            "emails",
            "emails.value",
            "emails[type eq \"work\"]",
            "emails[type eq \"work\"].value",
            "emails[not (type eq \"work\") or primary eq true].primary",
            "phoneNumbers[value pr]",
            "manager",
            "manager.value",
            "manager.displayName",
            "employeeNumber",
            "customFields",
            "customFields.x",
            "addresses[type eq \"work\"]",
            "addresses[type eq \"work\"].locality",
            "roles",
            ENTERPRISE_USER,
            DEFAULT_CUSTOM_URN,
        ];
        let values = [
            json!(null),
            json!(""),
            json!("x"),
            json!("True"),
            json!(true),
            json!(7),
            json!([]),
            json!([{"value": "v", "type": "work"}]),
            json!(["a", "b"]),
            json!({}),
            json!({"value": "v", "type": "Work", "primary": "false"}),
            json!({"givenName": "G", "x": [1]}),
        ];
        let schema = UserSchema::default();
        let mut applied = 0;
        for resource in [ann(), bare(), odd] {
            for path in paths {
                for value in &values {
                    for op in ["add", "replace", "remove"] {
                        let body = body(json!([{"op": op, "path": path, "value": value}]));
                        let Ok(ops) = parse_patch(&body) else {
                            continue;
                        };
                        let mut work = resource.clone();
                        if apply_patch(&mut work, &ops, &schema).is_ok() {
                            applied += 1;
                            assert!(work.is_object());
                        } else {
                            assert_eq!(work, resource);
                        }
                    }
                }
                let pathless = body(json!([{"op": "replace", "value": {path: "x"}}]));
                let ops = parse_patch(&pathless).expect("valid");
                let _ = apply_patch(&mut resource.clone(), &ops, &schema);
            }
        }
        assert!(applied > 500, "{applied}");
    }

    #[test]
    fn malformed_containers_are_replaced_when_written() {
        let odd = json!({"name": "Ann", "emails": "a@x.org", ENTERPRISE_USER: 5});
        let user = patch(
            odd,
            json!([
                {"op": "add", "path": "name.givenName", "value": "Ann"},
                {"op": "add", "path": "emails[type eq \"work\"].value", "value": "a@x.org"},
                {"op": "add", "path": "department", "value": "Ops"},
            ]),
        );
        assert_eq!(
            user,
            json!({
                "name": {"givenName": "Ann"},
                "emails": [{"type": "work", "value": "a@x.org"}],
                ENTERPRISE_USER: {"department": "Ops"}
            })
        );
    }

    // --- extensions ---

    #[test]
    fn custom_fields() {
        let user = patch(
            ann(),
            json!([{"op": "add", "path": "customFields.badge", "value": "B7"}]),
        );
        assert_eq!(
            custom(&user)["customFields"],
            json!({"costCentre": "C1", "badge": "B7"})
        );
        // The stored spelling of a field is kept.
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "customFields.COSTCENTRE", "value": "C2"}]),
        );
        assert_eq!(custom(&user)["customFields"], json!({"costCentre": "C2"}));
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "customFields.costCentre", "value": ""}]),
        );
        assert!(custom(&user).get("customFields").is_none());
        let user = patch(
            ann(),
            json!([{"op": "remove", "path": format!("{DEFAULT_CUSTOM_URN}:customFields.costCentre")}]),
        );
        assert!(custom(&user).get("customFields").is_none());
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": "customFields", "value": {"badge": "B7", "costCentre": null}}]),
        );
        assert_eq!(custom(&user)["customFields"], json!({"badge": "B7"}));
        let user = patch(ann(), json!([{"op": "remove", "path": "customFields"}]));
        assert!(custom(&user).get("customFields").is_none());
        assert_eq!(custom(&user)["company"], "Acme");
        let user = patch(
            bare(),
            json!([{"op": "add", "path": "customFields.badge", "value": "B7"}]),
        );
        assert_eq!(
            user[DEFAULT_CUSTOM_URN],
            json!({"customFields": {"badge": "B7"}})
        );
    }

    #[test]
    fn extension_objects_are_created_under_their_urn_and_schemas_are_untouched() {
        let user = patch(
            bare(),
            json!([{"op": "add", "path": "employeeNumber", "value": "9"}]),
        );
        assert_eq!(user[ENTERPRISE_USER], json!({"employeeNumber": "9"}));
        assert_eq!(user["schemas"], json!([CORE_USER]));
        let user = patch(
            bare(),
            json!([{"op": "add", "path": "location", "value": "Leeds"}]),
        );
        assert_eq!(user[DEFAULT_CUSTOM_URN], json!({"location": "Leeds"}));
        // A bare extension URN as the path applies the keys of its object.
        let user = patch(
            ann(),
            json!([{"op": "replace", "path": ENTERPRISE_USER, "value": {"department": "Ops", "manager": "m2", "unknown": 1}}]),
        );
        assert_eq!(
            ext(&user),
            &json!({"employeeNumber": "701", "department": "Ops", "manager": {"value": "m2"}})
        );
        let user = patch(
            ann(),
            json!([{"op": "add", "value": {ENTERPRISE_USER: {"employeeNumber": "8"}}}]),
        );
        assert_eq!(ext(&user)["employeeNumber"], "8");
        let user = patch(ann(), json!([{"op": "remove", "path": ENTERPRISE_USER}]));
        assert!(user.get(ENTERPRISE_USER).is_none());
        let err = patch_err(ann(), json!([{"op": "remove", "path": CORE_USER}]));
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        // A custom URN other than the configured one is unknown.
        let other = UserSchema::new("urn:acme:User");
        let ops = parse_patch(&body(
            json!([{"op": "add", "path": format!("{DEFAULT_CUSTOM_URN}:company"), "value": "x"}]),
        ))
        .expect("valid");
        let err = apply_patch(&mut ann(), &ops, &other).expect_err("unknown");
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        let ops = parse_patch(&body(
            json!([{"op": "add", "path": "urn:acme:User:company", "value": "x"}]),
        ))
        .expect("valid");
        let mut user = bare();
        apply_patch(&mut user, &ops, &other).expect("applied");
        assert_eq!(user["urn:acme:User"], json!({"company": "x"}));
    }

    /// Damaged PATCH bodies: each is refused as a SCIM error with the resource unchanged, or
    /// applied, and the patched resource then reads as an engine record or is refused; none
    /// panics.
    #[test]
    fn damaged_patches_are_refused_whole_not_a_panic() {
        use rollcall_domain::damage::{Rng, damage_with};
        use rollcall_domain::record::{Link, ReadOptions};
        const TOKENS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ",",
            "\"",
            ":",
            "null",
            "true",
            "\"False\"",
            "\"\"",
            "[]",
            "{}",
            "\"op\":\"Remove\"",
            "\"path\":\"emails\"",
            "\"value\":",
            "\\u0000",
            "1e999",
            ENTERPRISE_USER,
            DEFAULT_CUSTOM_URN,
            "[type eq \\\"work\\\"]",
            ".value",
            "é",
        ];
        let valid = [
            body(json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@example.com"},
            ])),
            body(json!([{"op": "replace", "value": {
                "name.givenName": "Anne",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "0190Boss2",
                "active": false,
            }}])),
            body(json!([
                {"op": "remove", "path": format!("{ENTERPRISE_USER}:manager")},
                {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 7700 900999"},
                {"op": "replace", "path": format!("{DEFAULT_CUSTOM_URN}:customFields"), "value": {"a": "b"}},
            ])),
        ]
        .map(|b| b.to_string());
        let schema = UserSchema::default();
        let original = ann();
        let mut rng = Rng::new(0x09A7_C4ED);
        let mut failures = Vec::new();
        let mut refused_by_apply = 0;
        for case in 0..60_000 {
            let mut bytes = valid[case % valid.len()].as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                damage_with(&mut bytes, &mut rng, TOKENS);
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            // What became of the body: not a PATCH body, applied, or refused by apply_patch
            // with the resource as it was (false: half applied).
            let outcome = std::panic::catch_unwind(|| {
                let Ok(body) = serde_json::from_str::<Value>(&text) else {
                    return None;
                };
                let ops = parse_patch(&body).ok()?;
                let mut resource = original.clone();
                match apply_patch(&mut resource, &ops, &schema) {
                    Err(_) => Some(resource == original),
                    Ok(()) => {
                        let options = ReadOptions::default();
                        let read = crate::resource::incoming_from_resource;
                        let _ = read(&resource, 1, Link::New, &options, &schema);
                        None
                    }
                }
            });
            match outcome {
                Ok(None) => {}
                Ok(Some(true)) => refused_by_apply += 1,
                Ok(Some(false)) => failures.push(format!("half applied: {text}")),
                Err(_) => failures.push(format!("panic: {text}")),
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures: {:?}",
            failures.len(),
            &failures[..failures.len().min(10)]
        );
        // Enough damaged bodies must get as far as apply_patch for this to mean something.
        assert!(
            refused_by_apply > 1_000,
            "only {refused_by_apply} reached apply_patch and failed there"
        );
    }
}
