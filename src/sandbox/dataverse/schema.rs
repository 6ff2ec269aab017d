//! The Dataverse tables the sandbox serves, with the attributes of the co-sell
//! solution (custom `cosell_*` columns, as in `mappings/connectors/dynamics365.yaml`):
//! types, lengths, option sets, lookup targets, required levels.

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// The primary key (Uniqueidentifier).
    Key,
    /// Single line of text with a maximum length.
    Text(usize),
    /// Multiple lines of text with a maximum length.
    Memo(usize),
    Money,
    Decimal,
    Integer,
    /// Read-only row version.
    BigInt,
    Boolean,
    /// Date only (`YYYY-MM-DD`).
    DateOnly,
    /// Date and time (UTC).
    DateTime,
    Picklist(&'static [(i64, &'static str)]),
    State(&'static [(i64, &'static str)]),
    /// (value, state, label).
    Status(&'static [(i64, i64, &'static str)]),
    /// Lookup to one of these tables (logical names); written with `name@odata.bind`.
    Lookup(&'static [&'static str]),
    /// Customer lookup (account or contact); written with `name_account@odata.bind` or
    /// `name_contact@odata.bind`.
    Customer,
}

/// Required level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    None,
    Application,
    /// Enforced by the platform on create.
    System,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attribute {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) kind: Kind,
    pub(crate) level: Level,
    /// Writable through the Web API.
    pub(crate) writable: bool,
}

/// One table.
#[derive(Debug)]
pub(crate) struct Entity {
    pub(crate) logical: &'static str,
    pub(crate) set: &'static str,
    pub(crate) key: &'static str,
    pub(crate) primary_name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) object_type_code: i64,
    pub(crate) attributes: &'static [Attribute],
}

impl Kind {
    /// True for lookups (read back as `_name_value`).
    pub(crate) fn is_lookup(self) -> bool {
        matches!(self, Kind::Lookup(_) | Kind::Customer)
    }
}

impl Entity {
    /// The attribute with this logical name.
    pub(crate) fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The attribute a query names: its logical name, or `_name_value` for lookups.
    pub(crate) fn queryable(&self, name: &str) -> Option<&'static Attribute> {
        if let Some(inner) = name
            .strip_prefix('_')
            .and_then(|n| n.strip_suffix("_value"))
        {
            return self.attribute(inner).filter(|a| a.kind.is_lookup());
        }
        self.attribute(name).filter(|a| !a.kind.is_lookup())
    }

    /// The JSON property an attribute is read as.
    pub(crate) fn property(attribute: &Attribute) -> String {
        if attribute.kind.is_lookup() {
            format!("_{}_value", attribute.name)
        } else {
            attribute.name.to_owned()
        }
    }
}

const fn attr(name: &'static str, label: &'static str, kind: Kind) -> Attribute {
    Attribute {
        name,
        label,
        kind,
        level: Level::None,
        writable: true,
    }
}

const fn required(name: &'static str, label: &'static str, kind: Kind, level: Level) -> Attribute {
    Attribute {
        name,
        label,
        kind,
        level,
        writable: true,
    }
}

const fn read_only(name: &'static str, label: &'static str, kind: Kind) -> Attribute {
    Attribute {
        name,
        label,
        kind,
        level: Level::None,
        writable: false,
    }
}

const USER: Kind = Kind::Lookup(&["systemuser"]);

/// Opportunity states.
pub(crate) const OPPORTUNITY_STATES: &[(i64, &str)] = &[(0, "Open"), (1, "Won"), (2, "Lost")];
/// Opportunity status reasons: (value, state, label).
pub(crate) const OPPORTUNITY_STATUSES: &[(i64, i64, &str)] = &[
    (1, 0, "In Progress"),
    (2, 0, "On Hold"),
    (3, 1, "Won"),
    (4, 2, "Canceled"),
    (5, 2, "Out-Sold"),
];
const ACTIVE_STATES: &[(i64, &str)] = &[(0, "Active"), (1, "Inactive")];
const ACTIVE_STATUSES: &[(i64, i64, &str)] = &[(1, 0, "Active"), (2, 1, "Inactive")];

const OPPORTUNITY: Entity = Entity {
    logical: "opportunity",
    set: "opportunities",
    key: "opportunityid",
    primary_name: "name",
    label: "Opportunity",
    object_type_code: 3,
    attributes: &[
        read_only("opportunityid", "Opportunity", Kind::Key),
        required("name", "Topic", Kind::Text(300), Level::Application),
        attr("description", "Description", Kind::Memo(2000)),
        attr("estimatedvalue", "Est. Revenue", Kind::Money),
        attr("isrevenuesystemcalculated", "Revenue", Kind::Boolean),
        attr("budgetamount", "Budget Amount", Kind::Money),
        attr("actualvalue", "Actual Revenue", Kind::Money),
        attr("estimatedclosedate", "Est. Close Date", Kind::DateOnly),
        attr("actualclosedate", "Actual Close Date", Kind::DateOnly),
        required(
            "customerid",
            "Potential Customer",
            Kind::Customer,
            Level::Application,
        ),
        attr("parentaccountid", "Account", Kind::Lookup(&["account"])),
        attr("parentcontactid", "Contact", Kind::Lookup(&["contact"])),
        attr(
            "transactioncurrencyid",
            "Currency",
            Kind::Lookup(&["transactioncurrency"]),
        ),
        attr(
            "salesstage",
            "Sales Stage",
            Kind::Picklist(&[(0, "Qualify"), (1, "Develop"), (2, "Propose"), (3, "Close")]),
        ),
        attr("statecode", "Status", Kind::State(OPPORTUNITY_STATES)),
        attr(
            "statuscode",
            "Status Reason",
            Kind::Status(OPPORTUNITY_STATUSES),
        ),
        attr("closeprobability", "Probability", Kind::Integer),
        attr(
            "cosell_syncwithpartnercenter",
            "Sync with Partner Center",
            Kind::Boolean,
        ),
        attr(
            "cosell_referralidentifier",
            "Referral Identifier",
            Kind::Text(100),
        ),
        attr("cosell_referrallink", "Referral Link", Kind::Text(255)),
        attr(
            "cosell_howcanmicrosofthelp",
            "How can Microsoft help?",
            Kind::Picklist(&[
                (100_000_000, "Workload specific value proposition"),
                (100_000_001, "Customer technical architecture"),
                (100_000_002, "Proof of concept or demo"),
                (100_000_003, "Quotes or licensing"),
                (100_000_004, "Post sales customer success"),
                (100_000_005, "General or other"),
            ]),
        ),
        attr("cosell_products", "Products", Kind::Text(4000)),
        attr("cosell_audit", "Audit", Kind::Memo(2000)),
        attr(
            "cosell_microsoftcrmidentifier",
            "Microsoft CRM Identifier",
            Kind::Text(100),
        ),
        attr(
            "cosell_referralvisibility",
            "Microsoft Partner Center Referral Visibility",
            Kind::Boolean,
        ),
        attr(
            "cosell_lastsyncedon",
            "Last Synced With Partner Center",
            Kind::DateTime,
        ),
        read_only("ownerid", "Owner", USER),
        read_only("createdby", "Created By", USER),
        read_only("modifiedby", "Modified By", USER),
        read_only("createdon", "Created On", Kind::DateTime),
        read_only("modifiedon", "Modified On", Kind::DateTime),
        read_only("versionnumber", "Version Number", Kind::BigInt),
    ],
};

const ACCOUNT: Entity = Entity {
    logical: "account",
    set: "accounts",
    key: "accountid",
    primary_name: "name",
    label: "Account",
    object_type_code: 1,
    attributes: &[
        read_only("accountid", "Account", Kind::Key),
        required("name", "Account Name", Kind::Text(160), Level::Application),
        attr("accountnumber", "Account Number", Kind::Text(20)),
        attr("description", "Description", Kind::Memo(2000)),
        attr("address1_line1", "Street 1", Kind::Text(250)),
        attr("address1_line2", "Street 2", Kind::Text(250)),
        attr("address1_city", "City", Kind::Text(80)),
        attr("address1_stateorprovince", "State/Province", Kind::Text(50)),
        attr("address1_postalcode", "ZIP/Postal Code", Kind::Text(20)),
        attr("address1_country", "Country/Region", Kind::Text(80)),
        attr("numberofemployees", "Number of Employees", Kind::Integer),
        attr("telephone1", "Main Phone", Kind::Text(50)),
        attr("websiteurl", "Website", Kind::Text(200)),
        attr(
            "primarycontactid",
            "Primary Contact",
            Kind::Lookup(&["contact"]),
        ),
        attr("statecode", "Status", Kind::State(ACTIVE_STATES)),
        attr("statuscode", "Status Reason", Kind::Status(ACTIVE_STATUSES)),
        read_only("ownerid", "Owner", USER),
        read_only("createdby", "Created By", USER),
        read_only("modifiedby", "Modified By", USER),
        read_only("createdon", "Created On", Kind::DateTime),
        read_only("modifiedon", "Modified On", Kind::DateTime),
        read_only("versionnumber", "Version Number", Kind::BigInt),
    ],
};

const CONTACT: Entity = Entity {
    logical: "contact",
    set: "contacts",
    key: "contactid",
    primary_name: "fullname",
    label: "Contact",
    object_type_code: 2,
    attributes: &[
        read_only("contactid", "Contact", Kind::Key),
        attr("firstname", "First Name", Kind::Text(50)),
        required("lastname", "Last Name", Kind::Text(50), Level::Application),
        read_only("fullname", "Full Name", Kind::Text(160)),
        attr("emailaddress1", "Email", Kind::Text(100)),
        attr("telephone1", "Business Phone", Kind::Text(50)),
        attr("jobtitle", "Job Title", Kind::Text(100)),
        attr("parentcustomerid", "Company Name", Kind::Customer),
        attr("statecode", "Status", Kind::State(ACTIVE_STATES)),
        attr("statuscode", "Status Reason", Kind::Status(ACTIVE_STATUSES)),
        read_only("ownerid", "Owner", USER),
        read_only("createdby", "Created By", USER),
        read_only("modifiedby", "Modified By", USER),
        read_only("createdon", "Created On", Kind::DateTime),
        read_only("modifiedon", "Modified On", Kind::DateTime),
        read_only("versionnumber", "Version Number", Kind::BigInt),
    ],
};

const TRANSACTION_CURRENCY: Entity = Entity {
    logical: "transactioncurrency",
    set: "transactioncurrencies",
    key: "transactioncurrencyid",
    primary_name: "currencyname",
    label: "Currency",
    object_type_code: 9105,
    attributes: &[
        read_only("transactioncurrencyid", "Currency", Kind::Key),
        required(
            "isocurrencycode",
            "Currency Code",
            Kind::Text(5),
            Level::System,
        ),
        required(
            "currencyname",
            "Currency Name",
            Kind::Text(100),
            Level::System,
        ),
        required(
            "currencysymbol",
            "Currency Symbol",
            Kind::Text(13),
            Level::System,
        ),
        required(
            "exchangerate",
            "Exchange Rate",
            Kind::Decimal,
            Level::System,
        ),
        attr("currencyprecision", "Currency Precision", Kind::Integer),
        attr("statecode", "Status", Kind::State(ACTIVE_STATES)),
        attr("statuscode", "Status Reason", Kind::Status(ACTIVE_STATUSES)),
        read_only("createdon", "Created On", Kind::DateTime),
        read_only("modifiedon", "Modified On", Kind::DateTime),
        read_only("versionnumber", "Version Number", Kind::BigInt),
    ],
};

const OPPORTUNITY_CLOSE: Entity = Entity {
    logical: "opportunityclose",
    set: "opportunitycloses",
    key: "activityid",
    primary_name: "subject",
    label: "Opportunity Close",
    object_type_code: 4208,
    attributes: &[
        read_only("activityid", "Opportunity Close", Kind::Key),
        attr("subject", "Subject", Kind::Text(200)),
        attr(
            "opportunityid",
            "Opportunity",
            Kind::Lookup(&["opportunity"]),
        ),
        attr("actualrevenue", "Actual Revenue", Kind::Money),
        attr("actualend", "Close Date", Kind::DateOnly),
        attr("description", "Description", Kind::Memo(2000)),
        attr(
            "statecode",
            "Activity Status",
            Kind::State(&[(0, "Open"), (1, "Completed"), (2, "Canceled")]),
        ),
        attr(
            "statuscode",
            "Status Reason",
            Kind::Status(&[(1, 0, "Open"), (2, 1, "Completed"), (3, 2, "Canceled")]),
        ),
        read_only("ownerid", "Owner", USER),
        read_only("createdby", "Created By", USER),
        read_only("modifiedby", "Modified By", USER),
        read_only("createdon", "Created On", Kind::DateTime),
        read_only("modifiedon", "Modified On", Kind::DateTime),
        read_only("versionnumber", "Version Number", Kind::BigInt),
    ],
};

/// Every table the sandbox serves.
pub(crate) static ENTITIES: &[Entity] = &[
    OPPORTUNITY,
    ACCOUNT,
    CONTACT,
    TRANSACTION_CURRENCY,
    OPPORTUNITY_CLOSE,
];

/// A table by entity set name (`opportunities`).
pub(crate) fn by_set(set: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.set == set)
}

/// A table by logical name (`opportunity`).
pub(crate) fn by_logical(logical: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.logical == logical)
}

/// The seeded currencies: (id, ISO code, name, symbol, exchange rate).
pub(crate) const CURRENCIES: &[(&str, &str, &str, &str, f64)] = &[
    (
        "5a4d1000-0000-4000-8000-000000000840",
        "USD",
        "US Dollar",
        "$",
        1.0,
    ),
    (
        "5a4d1000-0000-4000-8000-000000000978",
        "EUR",
        "Euro",
        "€",
        0.92,
    ),
    (
        "5a4d1000-0000-4000-8000-000000000826",
        "GBP",
        "Pound Sterling",
        "£",
        0.79,
    ),
    (
        "5a4d1000-0000-4000-8000-000000000986",
        "BRL",
        "Brazilian Real",
        "R$",
        5.4,
    ),
    (
        "5a4d1000-0000-4000-8000-000000000392",
        "JPY",
        "Japanese Yen",
        "¥",
        151.0,
    ),
];
