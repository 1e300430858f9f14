//! The attributes of the User resource (RFC 7643 §4.1, §4.3 and rollcall's extension of
//! SPEC §2), as static tables. The same tables answer `/Schemas`, tell the filter which
//! comparisons ignore case, and tell PATCH which paths exist.

use serde_json::{Value, json};

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The default URN of rollcall's own extension (a deployment setting, SPEC §2).
pub const DEFAULT_CUSTOM_URN: &str = "urn:ietf:params:scim:schemas:extension:rollcall:2.0:User";

/// Where an attribute lives in a resource: at the top level, or in an extension object keyed
/// by the extension's URN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Core,
    Enterprise,
    Custom,
}

/// The data type of an attribute (RFC 7643 §2.3), as far as rollcall needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::DateTime => "dateTime",
            Kind::Reference => "reference",
            Kind::Complex => "complex",
        }
    }
}

/// One attribute definition.
#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub kind: Kind,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub read_only: bool,
    /// `false` for standard attributes rollcall accepts and ignores (an identity provider's
    /// default mapping sends them; SPEC §2 does not store them). They are not advertised.
    pub stored: bool,
    pub uniqueness: &'static str,
    pub description: &'static str,
    pub canonical: &'static [&'static str],
    pub sub: &'static [AttrDef],
}

impl AttrDef {
    const fn new(name: &'static str, kind: Kind, description: &'static str) -> AttrDef {
        AttrDef {
            name,
            kind,
            multi_valued: false,
            required: false,
            case_exact: false,
            read_only: false,
            stored: true,
            uniqueness: "none",
            description,
            canonical: &[],
            sub: &[],
        }
    }

    const fn string(name: &'static str, description: &'static str) -> AttrDef {
        AttrDef::new(name, Kind::String, description)
    }

    const fn ignored(name: &'static str, kind: Kind) -> AttrDef {
        AttrDef {
            stored: false,
            ..AttrDef::new(name, kind, "")
        }
    }

    /// The sub-attribute named `name`, compared case-insensitively.
    pub fn sub_attr(&self, name: &str) -> Option<&'static AttrDef> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    fn document(&self) -> Value {
        let mut doc = json!({
            "name": self.name,
            "type": self.kind.as_str(),
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "mutability": if self.read_only { "readOnly" } else { "readWrite" },
            "returned": "default",
        });
        if self.kind != Kind::Complex && self.kind != Kind::Boolean {
            doc["caseExact"] = Value::from(self.case_exact);
            doc["uniqueness"] = Value::from(self.uniqueness);
        }
        if !self.canonical.is_empty() {
            doc["canonicalValues"] = json!(self.canonical);
        }
        if self.kind == Kind::Reference {
            doc["referenceTypes"] = json!(["User"]);
        }
        let subs: Vec<Value> = self
            .sub
            .iter()
            .filter(|a| a.stored)
            .map(AttrDef::document)
            .collect();
        if self.kind == Kind::Complex {
            doc["subAttributes"] = Value::Array(subs);
        }
        doc
    }
}

/// The sub-attributes of `emails` and `phoneNumbers` (one value per type is stored).
const fn typed_value(types: &'static [&'static str], description: &'static str) -> [AttrDef; 4] {
    [
        AttrDef::string("value", "The value."),
        AttrDef {
            canonical: types,
            ..AttrDef::string("type", description)
        },
        // Accepted and ignored: rollcall keeps one value per type.
        AttrDef::ignored("primary", Kind::Boolean),
        AttrDef::ignored("display", Kind::String),
    ]
}

const EMAIL_SUB: &[AttrDef] = &typed_value(&["work"], "work: the address rollcall stores.");
const PHONE_SUB: &[AttrDef] = &typed_value(
    &["mobile", "work"],
    "mobile or work: the numbers rollcall stores.",
);

/// Attributes common to all resources (RFC 7643 §3.1).
const COMMON: &[AttrDef] = &[
    AttrDef {
        case_exact: true,
        read_only: true,
        uniqueness: "server",
        ..AttrDef::string("id", "Identifier of the user, issued by rollcall.")
    },
    AttrDef {
        case_exact: true,
        ..AttrDef::string(
            "externalId",
            "Identifier of the user in the identity provider.",
        )
    },
    AttrDef {
        read_only: true,
        sub: &[
            AttrDef::string("resourceType", ""),
            AttrDef::new("created", Kind::DateTime, ""),
            AttrDef::new("lastModified", Kind::DateTime, ""),
            AttrDef::string("location", ""),
            AttrDef::string("version", ""),
        ],
        ..AttrDef::new("meta", Kind::Complex, "Resource metadata.")
    },
];

const CORE: &[AttrDef] = &[
    AttrDef {
        required: true,
        uniqueness: "server",
        ..AttrDef::string(
            "userName",
            "Unique identifier for the user; compared case-insensitively.",
        )
    },
    AttrDef {
        sub: &[
            AttrDef::string("givenName", "First name."),
            AttrDef::string("familyName", "Surname."),
            AttrDef::ignored("formatted", Kind::String),
            AttrDef::string("middleName", "Middle name."),
            AttrDef::ignored("honorificPrefix", Kind::String),
            AttrDef::ignored("honorificSuffix", Kind::String),
        ],
        ..AttrDef::new("name", Kind::Complex, "The user's name.")
    },
    AttrDef::string("title", "Job title."),
    AttrDef::new("active", Kind::Boolean, "Whether the account is active."),
    AttrDef {
        multi_valued: true,
        sub: EMAIL_SUB,
        ..AttrDef::new(
            "emails",
            Kind::Complex,
            "Email addresses; rollcall stores the work address.",
        )
    },
    AttrDef {
        multi_valued: true,
        sub: PHONE_SUB,
        ..AttrDef::new(
            "phoneNumbers",
            Kind::Complex,
            "Phone numbers; rollcall stores the mobile and work numbers.",
        )
    },
    AttrDef::string(
        "displayName",
        "The name shown for the user; \"First Second\" when none was sent.",
    ),
    AttrDef::ignored("nickName", Kind::String),
    AttrDef::ignored("profileUrl", Kind::Reference),
    AttrDef::ignored("userType", Kind::String),
    AttrDef::ignored("preferredLanguage", Kind::String),
    AttrDef::ignored("locale", Kind::String),
    AttrDef::ignored("timezone", Kind::String),
    AttrDef::ignored("password", Kind::String),
    AttrDef::ignored("ims", Kind::Complex),
    AttrDef::ignored("photos", Kind::Complex),
    AttrDef::ignored("addresses", Kind::Complex),
    AttrDef::ignored("groups", Kind::Complex),
    AttrDef::ignored("entitlements", Kind::Complex),
    AttrDef::ignored("roles", Kind::Complex),
    AttrDef::ignored("x509Certificates", Kind::Complex),
];

const ENTERPRISE: &[AttrDef] = &[
    AttrDef::string("employeeNumber", "Employee ID; unique in the organisation."),
    AttrDef::string("department", "Department name."),
    AttrDef {
        sub: &[
            AttrDef {
                case_exact: true,
                ..AttrDef::string("value", "The manager's id.")
            },
            AttrDef::new(
                "$ref",
                Kind::Reference,
                "The manager's resource URI; the value decides.",
            ),
            AttrDef::ignored("displayName", Kind::String),
        ],
        ..AttrDef::new("manager", Kind::Complex, "The user's manager.")
    },
    AttrDef::ignored("costCenter", Kind::String),
    AttrDef::ignored("organization", Kind::String),
    AttrDef::ignored("division", Kind::String),
];

const CUSTOM: &[AttrDef] = &[
    AttrDef::string("company", "Company."),
    AttrDef::string("description", "About me."),
    AttrDef::string("location", "Location name."),
    AttrDef::string(
        "startEmploymentDate",
        "Start of employment, an ISO date (YYYY-MM-DD).",
    ),
    AttrDef::string(
        "endEmploymentDate",
        "End of employment, an ISO date (YYYY-MM-DD).",
    ),
    AttrDef::new(
        "customFields",
        Kind::Complex,
        "Operator-defined fields: an object of string values.",
    ),
];

/// A parsed attribute path: `[URN ":"] name ["." sub]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Split the text of an attribute path. The URN is everything up to the last `:` (URNs
    /// contain dots, as in `2.0`, so the sub-attribute is looked for after it).
    pub fn parse(text: &str) -> AttrPath {
        let (urn, rest) = match text.rfind(':') {
            Some(i)
                if text
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("urn:")) =>
            {
                (Some(text[..i].to_owned()), &text[i + 1..])
            }
            _ => (None, text),
        };
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name.to_owned(), Some(sub.to_owned())),
            None => (rest.to_owned(), None),
        };
        AttrPath { urn, name, sub }
    }
}

/// An attribute path resolved against the schema.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    pub container: Container,
    pub attr: &'static AttrDef,
    /// The sub-attribute, when the path names one. `customFields.x` has none: its
    /// sub-attributes are operator-defined.
    pub sub: Option<&'static AttrDef>,
}

/// The User schema of a deployment: the core and enterprise schemas, and rollcall's extension
/// under the configured URN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSchema {
    pub custom_urn: String,
}

impl Default for UserSchema {
    fn default() -> Self {
        UserSchema {
            custom_urn: DEFAULT_CUSTOM_URN.to_owned(),
        }
    }
}

impl UserSchema {
    pub fn new(custom_urn: impl Into<String>) -> UserSchema {
        UserSchema {
            custom_urn: custom_urn.into(),
        }
    }

    /// The URN that names a container (the core schema's for [`Container::Core`]).
    pub fn urn(&self, container: Container) -> &str {
        match container {
            Container::Core => CORE_USER,
            Container::Enterprise => ENTERPRISE_USER,
            Container::Custom => &self.custom_urn,
        }
    }

    /// The container a schema URN names, compared case-insensitively.
    pub fn container_of(&self, urn: &str) -> Option<Container> {
        [Container::Core, Container::Enterprise, Container::Custom]
            .into_iter()
            .find(|c| self.urn(*c).eq_ignore_ascii_case(urn))
    }

    /// The attribute definitions of a container (common attributes included in the core).
    pub fn attributes(container: Container) -> impl Iterator<Item = &'static AttrDef> {
        let (first, second): (&'static [AttrDef], &'static [AttrDef]) = match container {
            Container::Core => (COMMON, CORE),
            Container::Enterprise => (ENTERPRISE, &[]),
            Container::Custom => (CUSTOM, &[]),
        };
        first.iter().chain(second)
    }

    /// Find a top-level attribute by name (case-insensitive). Without a URN, the core schema
    /// is searched first, then the enterprise extension, then rollcall's (identity providers
    /// and admins write `employeeNumber` without its URN).
    pub fn find(&self, urn: Option<&str>, name: &str) -> Option<(Container, &'static AttrDef)> {
        let containers: Vec<Container> = match urn {
            Some(urn) => vec![self.container_of(urn)?],
            None => vec![Container::Core, Container::Enterprise, Container::Custom],
        };
        containers.into_iter().find_map(|c| {
            UserSchema::attributes(c)
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .map(|a| (c, a))
        })
    }

    /// Resolve a path. `None` when the attribute or sub-attribute does not exist.
    pub fn resolve(&self, path: &AttrPath) -> Option<Resolved> {
        let (container, attr) = self.find(path.urn.as_deref(), &path.name)?;
        let sub = match &path.sub {
            None => None,
            Some(_) if attr.name == "customFields" => None,
            Some(sub) => Some(attr.sub_attr(sub)?),
        };
        Some(Resolved {
            container,
            attr,
            sub,
        })
    }

    /// The schema URNs a resource declares.
    pub fn resource_schemas(&self) -> Value {
        json!([CORE_USER, ENTERPRISE_USER, self.custom_urn])
    }
}

/// `/ServiceProviderConfig` (RFC 7643 §5).
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/rollcall/rollcall/blob/main/docs/scim-compliance.md",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": 200},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token issued with `rollcall token create`.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// `/ResourceTypes`: the User resource only (Groups are not synced).
pub fn resource_types(base: &str, schema: &UserSchema) -> Value {
    json!([{
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User accounts",
        "schema": CORE_USER,
        "schemaExtensions": [
            {"schema": ENTERPRISE_USER, "required": false},
            {"schema": schema.custom_urn, "required": false},
        ],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
    }])
}

/// `/Schemas`: the attributes rollcall stores, per schema.
pub fn schemas(base: &str, schema: &UserSchema) -> Value {
    let document = |container: Container, name: &str, description: &str| {
        let urn = schema.urn(container);
        let attributes: Vec<Value> = UserSchema::attributes(container)
            .filter(|a| a.stored && !matches!(a.name, "id" | "externalId" | "meta"))
            .map(AttrDef::document)
            .collect();
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": urn,
            "name": name,
            "description": description,
            "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{urn}")},
        })
    };
    json!([
        document(Container::Core, "User", "User Account"),
        document(Container::Enterprise, "EnterpriseUser", "Enterprise User"),
        document(
            Container::Custom,
            "RollcallUser",
            "rollcall's user attributes"
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_last_colon_of_a_urn() {
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        );
        assert_eq!(p.urn.as_deref(), Some(ENTERPRISE_USER));
        assert_eq!(p.name, "manager");
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = AttrPath::parse("name.givenName");
        assert_eq!(
            (p.urn, p.name.as_str(), p.sub.as_deref()),
            (None, "name", Some("givenName"))
        );
        // Multi-byte text never splits inside a character.
        assert_eq!(AttrPath::parse("ab€:x").name, "ab€:x");
    }

    #[test]
    fn names_resolve_case_insensitively_and_without_their_urn() {
        let s = UserSchema::default();
        let r = s.resolve(&AttrPath::parse("EMPLOYEENUMBER")).unwrap();
        assert_eq!(r.container, Container::Enterprise);
        let r = s.resolve(&AttrPath::parse("emails.VALUE")).unwrap();
        assert_eq!(r.sub.unwrap().name, "value");
        assert!(s.resolve(&AttrPath::parse("shoeSize")).is_none());
        assert!(s.resolve(&AttrPath::parse("name.shoe")).is_none());
        let custom = format!("{DEFAULT_CUSTOM_URN}:customFields.costCentre");
        assert_eq!(
            s.resolve(&AttrPath::parse(&custom)).unwrap().container,
            Container::Custom
        );
        // The configured URN is the only one that names the extension.
        let blink = UserSchema::new("urn:ietf:params:scim:schemas:extension:blink:2.0:User");
        assert!(blink.resolve(&AttrPath::parse(&custom)).is_none());
    }

    #[test]
    fn schemas_advertise_stored_attributes_only() {
        let docs = schemas("http://h/scim/v2", &UserSchema::default());
        let core = &docs[0]["attributes"];
        let names: Vec<&str> = core
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"userName"));
        assert!(names.contains(&"displayName"));
        assert!(!names.contains(&"nickName"));
        assert_eq!(docs[2]["id"], DEFAULT_CUSTOM_URN);
    }
}
