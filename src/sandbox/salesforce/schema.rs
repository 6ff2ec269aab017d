//! The sObjects the sandbox serves: Opportunity (with the co-sell package's custom
//! fields), Account, Contact and OpportunityContactRole, with Salesforce's field types,
//! lengths, picklists and the default opportunity stages.

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Type {
    Id,
    String(usize),
    TextArea(usize),
    Url(usize),
    Email(usize),
    Phone(usize),
    /// Values, and whether other values are refused.
    Picklist(&'static [&'static str], bool),
    Boolean,
    Currency,
    Percent,
    Int,
    Date,
    DateTime,
    /// Reference to these sObjects; the relationship name for parent queries.
    Reference(&'static [&'static str], &'static str),
}

/// One field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) kind: Type,
    pub(crate) required: bool,
    pub(crate) createable: bool,
    pub(crate) updateable: bool,
    pub(crate) external_id: bool,
}

/// One sObject.
#[derive(Debug)]
pub(crate) struct SObject {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) prefix: &'static str,
    pub(crate) fields: &'static [Field],
}

impl SObject {
    /// The field with this API name (case-insensitive, as Salesforce binds them).
    pub(crate) fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The reference field whose relationship name this is (`Account` -> `AccountId`).
    pub(crate) fn relationship(&self, name: &str) -> Option<(&'static Field, &'static str)> {
        self.fields.iter().find_map(|f| match f.kind {
            Type::Reference(targets, relationship) if relationship.eq_ignore_ascii_case(name) => {
                targets.first().map(|t| (f, *t))
            }
            _ => None,
        })
    }
}

impl Type {
    /// The describe `type` and SOAP type.
    pub(crate) fn describe(self) -> (&'static str, &'static str) {
        match self {
            Type::Id => ("id", "tns:ID"),
            Type::String(_) => ("string", "xsd:string"),
            Type::TextArea(_) => ("textarea", "xsd:string"),
            Type::Url(_) => ("url", "xsd:string"),
            Type::Email(_) => ("email", "xsd:string"),
            Type::Phone(_) => ("phone", "xsd:string"),
            Type::Picklist(..) => ("picklist", "xsd:string"),
            Type::Boolean => ("boolean", "xsd:boolean"),
            Type::Currency => ("currency", "xsd:double"),
            Type::Percent => ("percent", "xsd:double"),
            Type::Int => ("int", "xsd:int"),
            Type::Date => ("date", "xsd:date"),
            Type::DateTime => ("datetime", "xsd:dateTime"),
            Type::Reference(..) => ("reference", "tns:ID"),
        }
    }

    /// Maximum text length, if any.
    pub(crate) fn length(self) -> Option<usize> {
        match self {
            Type::String(n)
            | Type::TextArea(n)
            | Type::Url(n)
            | Type::Email(n)
            | Type::Phone(n) => Some(n),
            Type::Picklist(..) => Some(255),
            Type::Id | Type::Reference(..) => Some(18),
            _ => None,
        }
    }
}

const fn field(name: &'static str, label: &'static str, kind: Type) -> Field {
    Field {
        name,
        label,
        kind,
        required: false,
        createable: true,
        updateable: true,
        external_id: false,
    }
}

const fn required(name: &'static str, label: &'static str, kind: Type) -> Field {
    Field {
        name,
        label,
        kind,
        required: true,
        createable: true,
        updateable: true,
        external_id: false,
    }
}

const fn read_only(name: &'static str, label: &'static str, kind: Type) -> Field {
    Field {
        name,
        label,
        kind,
        required: false,
        createable: false,
        updateable: false,
        external_id: false,
    }
}

const fn external(name: &'static str, label: &'static str, kind: Type) -> Field {
    Field {
        name,
        label,
        kind,
        required: false,
        createable: true,
        updateable: true,
        external_id: true,
    }
}

/// One opportunity stage: (name, closed, won, default probability, forecast category).
pub(crate) type Stage = (&'static str, bool, bool, i64, &'static str);

/// Salesforce's default opportunity stages.
pub(crate) const STAGES: &[Stage] = &[
    ("Prospecting", false, false, 10, "Pipeline"),
    ("Qualification", false, false, 10, "Pipeline"),
    ("Needs Analysis", false, false, 20, "Pipeline"),
    ("Value Proposition", false, false, 50, "Pipeline"),
    ("Id. Decision Makers", false, false, 60, "Pipeline"),
    ("Perception Analysis", false, false, 70, "Pipeline"),
    ("Proposal/Price Quote", false, false, 75, "Pipeline"),
    ("Negotiation/Review", false, false, 90, "Pipeline"),
    ("Closed Won", true, true, 100, "Closed"),
    ("Closed Lost", true, false, 0, "Omitted"),
];

const STAGE_NAMES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];

/// Currencies of the (multi-currency) sandbox org.
pub(crate) const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "BRL", "JPY"];

const USER: Type = Type::Reference(&["User"], "Owner");

const AUDIT_FIELDS: [Field; 6] = [
    read_only("IsDeleted", "Deleted", Type::Boolean),
    read_only("CreatedDate", "Created Date", Type::DateTime),
    read_only(
        "CreatedById",
        "Created By ID",
        Type::Reference(&["User"], "CreatedBy"),
    ),
    read_only("LastModifiedDate", "Last Modified Date", Type::DateTime),
    read_only(
        "LastModifiedById",
        "Last Modified By ID",
        Type::Reference(&["User"], "LastModifiedBy"),
    ),
    read_only("SystemModstamp", "System Modstamp", Type::DateTime),
];

const OPPORTUNITY: SObject = SObject {
    name: "Opportunity",
    label: "Opportunity",
    plural: "Opportunities",
    prefix: "006",
    fields: &[
        read_only("Id", "Opportunity ID", Type::Id),
        field(
            "AccountId",
            "Account ID",
            Type::Reference(&["Account"], "Account"),
        ),
        required("Name", "Name", Type::String(120)),
        field("Description", "Description", Type::TextArea(32000)),
        required("StageName", "Stage", Type::Picklist(STAGE_NAMES, true)),
        field("Amount", "Amount", Type::Currency),
        field("Probability", "Probability (%)", Type::Percent),
        required("CloseDate", "Close Date", Type::Date),
        field(
            "Type",
            "Opportunity Type",
            Type::Picklist(
                &[
                    "Existing Customer - Upgrade",
                    "Existing Customer - Replacement",
                    "Existing Customer - Downgrade",
                    "New Customer",
                ],
                false,
            ),
        ),
        read_only("IsClosed", "Closed", Type::Boolean),
        read_only("IsWon", "Won", Type::Boolean),
        field(
            "ForecastCategoryName",
            "Forecast Category",
            Type::Picklist(
                &["Omitted", "Pipeline", "Best Case", "Commit", "Closed"],
                true,
            ),
        ),
        field(
            "CurrencyIsoCode",
            "Opportunity Currency",
            Type::Picklist(CURRENCIES, true),
        ),
        field("OwnerId", "Owner ID", USER),
        AUDIT_FIELDS[0],
        AUDIT_FIELDS[1],
        AUDIT_FIELDS[2],
        AUDIT_FIELDS[3],
        AUDIT_FIELDS[4],
        AUDIT_FIELDS[5],
        field(
            "Sync_with_Partner_Center__c",
            "Sync with Partner Center",
            Type::Boolean,
        ),
        external(
            "Referral_Identifier__c",
            "Referral Identifier",
            Type::String(100),
        ),
        field("Referral_Link__c", "Referral Link", Type::Url(255)),
        field(
            "How_can_Microsoft_help__c",
            "How can Microsoft help?",
            Type::Picklist(
                &[
                    "Workload specific value proposition",
                    "Customer technical architecture",
                    "Proof of concept or demo",
                    "Quotes or licensing",
                    "Post sales customer success",
                    "General or other",
                ],
                true,
            ),
        ),
        field("Products__c", "Products", Type::String(255)),
        field("Audit__c", "Audit", Type::TextArea(100_000)),
        field(
            "Last_Synced_With_Partner_Center__c",
            "Last Synced With Partner Center",
            Type::DateTime,
        ),
    ],
};

const ACCOUNT: SObject = SObject {
    name: "Account",
    label: "Account",
    plural: "Accounts",
    prefix: "001",
    fields: &[
        read_only("Id", "Account ID", Type::Id),
        required("Name", "Account Name", Type::String(255)),
        field("AccountNumber", "Account Number", Type::String(40)),
        field("Description", "Account Description", Type::TextArea(32000)),
        field("BillingStreet", "Billing Street", Type::TextArea(255)),
        field("BillingCity", "Billing City", Type::String(40)),
        field("BillingState", "Billing State/Province", Type::String(80)),
        field(
            "BillingPostalCode",
            "Billing Zip/Postal Code",
            Type::String(20),
        ),
        field("BillingCountry", "Billing Country", Type::String(80)),
        field("Phone", "Account Phone", Type::Phone(40)),
        field("Website", "Website", Type::Url(255)),
        field("NumberOfEmployees", "Employees", Type::Int),
        field(
            "CurrencyIsoCode",
            "Account Currency",
            Type::Picklist(CURRENCIES, true),
        ),
        field("OwnerId", "Owner ID", USER),
        AUDIT_FIELDS[0],
        AUDIT_FIELDS[1],
        AUDIT_FIELDS[2],
        AUDIT_FIELDS[3],
        AUDIT_FIELDS[4],
        AUDIT_FIELDS[5],
    ],
};

const CONTACT: SObject = SObject {
    name: "Contact",
    label: "Contact",
    plural: "Contacts",
    prefix: "003",
    fields: &[
        read_only("Id", "Contact ID", Type::Id),
        field(
            "AccountId",
            "Account ID",
            Type::Reference(&["Account"], "Account"),
        ),
        field("FirstName", "First Name", Type::String(40)),
        required("LastName", "Last Name", Type::String(80)),
        read_only("Name", "Full Name", Type::String(121)),
        field("Email", "Email", Type::Email(80)),
        field("Phone", "Business Phone", Type::Phone(40)),
        field("Title", "Title", Type::String(128)),
        field(
            "CurrencyIsoCode",
            "Contact Currency",
            Type::Picklist(CURRENCIES, true),
        ),
        field("OwnerId", "Owner ID", USER),
        AUDIT_FIELDS[0],
        AUDIT_FIELDS[1],
        AUDIT_FIELDS[2],
        AUDIT_FIELDS[3],
        AUDIT_FIELDS[4],
        AUDIT_FIELDS[5],
    ],
};

const CONTACT_ROLE: SObject = SObject {
    name: "OpportunityContactRole",
    label: "Opportunity Contact Role",
    plural: "Opportunity Contact Role",
    prefix: "00K",
    fields: &[
        read_only("Id", "Opportunity Contact Role ID", Type::Id),
        Field {
            name: "OpportunityId",
            label: "Opportunity ID",
            kind: Type::Reference(&["Opportunity"], "Opportunity"),
            required: true,
            createable: true,
            updateable: false,
            external_id: false,
        },
        required(
            "ContactId",
            "Contact ID",
            Type::Reference(&["Contact"], "Contact"),
        ),
        field(
            "Role",
            "Role",
            Type::Picklist(
                &[
                    "Business User",
                    "Decision Maker",
                    "Economic Buyer",
                    "Economic Decision Maker",
                    "Evaluator",
                    "Executive Sponsor",
                    "Influencer",
                    "Technical Buyer",
                    "Other",
                ],
                false,
            ),
        ),
        field("IsPrimary", "Primary", Type::Boolean),
        AUDIT_FIELDS[0],
        AUDIT_FIELDS[1],
        AUDIT_FIELDS[2],
        AUDIT_FIELDS[3],
        AUDIT_FIELDS[4],
        AUDIT_FIELDS[5],
    ],
};

/// Every sObject the sandbox serves.
pub(crate) static SOBJECTS: &[SObject] = &[OPPORTUNITY, ACCOUNT, CONTACT, CONTACT_ROLE];

/// An sObject by name (case-insensitive).
pub(crate) fn by_name(name: &str) -> Option<&'static SObject> {
    SOBJECTS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The sObject an id belongs to, by key prefix.
pub(crate) fn by_prefix(id: &str) -> Option<&'static SObject> {
    SOBJECTS.iter().find(|s| id.starts_with(s.prefix))
}

/// A stage by name.
pub(crate) fn stage(name: &str) -> Option<&'static Stage> {
    STAGES.iter().find(|s| s.0 == name)
}
