//! Every connector against the sandbox over real HTTP, one test per documented
//! behaviour: 412 then re-read, 429 + `Retry-After` honoured, 503 retried and 400
//! not, dropped connections, `@odata.nextLink` / `nextRecordsUrl` paging over many
//! pages, JSON-Patch with nested pointers, Salesforce error arrays and upsert
//! 201/200, token expiry and refresh, URLs from outside refused before any token
//! is sent, and the connector's Referral bodies against Microsoft's schema.
//!
//! Faults, settings, seeds and edits "as a user would" go through the sandbox's
//! admin API; what reached the services is read back from its request log
//! (`/_sandbox/requests`), whose timestamps are the sandbox's own.

use serde_json::json;

use super::partner_center::referral_validator;
use super::sandbox::{Running, sandbox_with};
use super::*;
use cosync::runtime::connectors::ErrorKind;

const REFERRALS: &str = "/v1.0/engagements/referrals";

/// The sandbox's admin API.
struct Admin {
    client: reqwest::Client,
    base: String,
}

impl Admin {
    fn of(handle: &cosync::sandbox::SandboxHandle) -> Admin {
        Admin {
            client: ok(reqwest::Client::builder().no_proxy().build()),
            base: handle.urls().admin.trim_end_matches('/').to_string(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = ok(request.send().await);
        let status = response.status();
        let text = ok(response.text().await);
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// Adds one fault rule.
    async fn fault(&self, rule: Value) {
        self.post("/_sandbox/faults", rule).await;
    }

    /// The request log (oldest first), filtered by `query`
    /// (`service`, `method`, `path_prefix`, `status`, `since`, `limit`).
    async fn log(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let response = ok(self
            .client
            .get(format!("{}/_sandbox/requests", self.base))
            .query(query)
            .send()
            .await);
        match ok(response.json::<Value>().await) {
            Value::Array(entries) => entries,
            other => panic!("the request log is not a list: {other}"),
        }
    }

    /// The writes of the request log (successful POST, PUT, PATCH, DELETE).
    async fn writes(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let response = ok(self
            .client
            .get(format!("{}/_sandbox/writes", self.base))
            .query(query)
            .send()
            .await);
        match ok(response.json::<Value>().await) {
            Value::Array(entries) => entries,
            other => panic!("the write log is not a list: {other}"),
        }
    }
}

async fn start() -> (Running, Admin) {
    start_with(cosync::sandbox::Settings::default()).await
}

async fn start_with(settings: cosync::sandbox::Settings) -> (Running, Admin) {
    let running = sandbox_with(settings).await;
    let admin = Admin::of(&running.0);
    (running, admin)
}

fn statuses(entries: &[Value]) -> Vec<u64> {
    entries
        .iter()
        .filter_map(|e| e["status"].as_u64())
        .collect()
}

/// When the sandbox received a logged request.
fn arrived(entry: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    ok(chrono::DateTime::parse_from_rfc3339(
        entry["time"].as_str().unwrap_or_default(),
    ))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn referral_record(name: &str) -> Value {
    json!({
        "name": name, "type": "Independent", "qualification": "SalesQualified",
        "status": "New", "substatus": "Pending",
        "customerProfile": {
            "name": "Contoso",
            "address": {"addressLine1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"}
        },
        "details": {"dealValue": 1000, "currency": "EUR", "notes": "first notes"}
    })
}

async fn create_referral(set: &HttpConnectorSet, pc: ConnectorId, name: &str) -> Value {
    ok(run(
        set,
        Request::Create {
            connector: pc,
            entity: "referral".into(),
            record: referral_record(name),
        },
    )
    .await)
}

fn get(connector: ConnectorId, entity: &str, key: &str) -> Request {
    Request::Get {
        connector,
        entity: entity.into(),
        key: key.into(),
        select: Vec::new(),
    }
}

fn call(connector: ConnectorId, operation: &str, inputs: Value) -> Request {
    Request::Call {
        connector,
        operation: operation.into(),
        inputs,
    }
}

// --- 412 then re-read -------------------------------------------------------

#[tokio::test]
async fn partner_center_patch_with_a_stale_etag_is_a_conflict_until_re_read() {
    let ((handle, p, set), admin) = start().await;
    let pc = id(&p, "partner_center");
    let created = create_referral(&set, pc, "Stale PATCH").await;
    let referral_id = text(&created["id"]);
    let first_tag = text(&created["eTag"]);
    // A seller edits the referral in Partner Center meanwhile.
    admin
        .patch(
            &format!("/_sandbox/partner_center/referrals/{referral_id}"),
            json!({"details": {"notes": "edited by a seller"}}),
        )
        .await;
    let update = |tag: &str| Request::Update {
        connector: pc,
        entity: "referral".into(),
        key: referral_id.clone(),
        changes: json!({"/details/dealValue": 3000}),
        if_match: Some(tag.to_string()),
    };
    let stale = run(&set, update(&first_tag)).await.err();
    let stale = stale.unwrap_or_else(|| panic!("a stale If-Match was accepted"));
    assert_eq!(stale.kind, ErrorKind::Conflict, "{stale:?}");
    assert_eq!(stale.status, Some(412), "{stale:?}");
    assert!(stale.message.contains("preconditionFailed"), "{stale:?}");

    let fresh = ok(run(&set, get(pc, "referral", &referral_id)).await);
    let fresh_tag = text(&fresh["eTag"]);
    assert_ne!(fresh_tag, first_tag, "the re-read brings the new eTag");
    assert_eq!(fresh["details"]["notes"], "edited by a seller");

    let updated = ok(run(&set, update(&fresh_tag)).await);
    assert_eq!(updated["details"]["dealValue"], json!(3000), "{updated}");
    assert_eq!(
        updated["details"]["notes"], "edited by a seller",
        "{updated}"
    );
    let patches = admin
        .log(&[
            ("method", "PATCH"),
            ("path_prefix", &format!("{REFERRALS}/{referral_id}")),
        ])
        .await;
    assert_eq!(statuses(&patches), [412, 200], "{patches:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn partner_center_put_with_a_stale_etag_is_a_conflict_until_re_read() {
    let ((handle, p, set), admin) = start().await;
    let pc = id(&p, "partner_center");
    let created = create_referral(&set, pc, "Stale PUT").await;
    let referral_id = text(&created["id"]);
    let read = ok(run(&set, get(pc, "referral", &referral_id)).await);
    admin
        .patch(
            &format!("/_sandbox/partner_center/referrals/{referral_id}"),
            json!({"name": "Renamed in Partner Center"}),
        )
        .await;
    let replace = |mut referral: Value| {
        referral["externalReferenceId"] = json!("opp-42");
        call(pc, "replace_referral", json!({"referral": referral}))
    };
    let stale = run(&set, replace(read.clone())).await.err();
    assert_eq!(
        stale.as_ref().map(|e| (e.kind, e.status)),
        Some((ErrorKind::Conflict, Some(412))),
        "{stale:?}"
    );
    let fresh = ok(run(&set, get(pc, "referral", &referral_id)).await);
    assert_ne!(fresh["eTag"], read["eTag"]);
    let replaced = ok(run(&set, replace(fresh)).await);
    assert_eq!(replaced["externalReferenceId"], "opp-42", "{replaced}");
    assert_eq!(replaced["name"], "Renamed in Partner Center", "{replaced}");
    let puts = admin.log(&[("method", "PUT")]).await;
    assert_eq!(statuses(&puts), [412, 200], "{puts:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn dataverse_update_with_a_stale_etag_is_a_conflict_until_re_read() {
    let ((handle, p, set), admin) = start().await;
    let dv = id(&p, "dynamics365");
    let account = ok(run(
        &set,
        Request::Create {
            connector: dv,
            entity: "account".into(),
            record: json!({"name": "Contoso"}),
        },
    )
    .await);
    let opportunity = ok(run(
        &set,
        Request::Create {
            connector: dv,
            entity: "opportunity".into(),
            record: json!({"name": "Deal", "customerid": account["accountid"].clone()}),
        },
    )
    .await);
    let key = text(&opportunity["opportunityid"]);
    let first_tag = text(&opportunity["@odata.etag"]);
    assert!(first_tag.starts_with("W/\""), "a weak eTag: {first_tag}");
    // A user edits the opportunity in Dynamics meanwhile.
    admin
        .patch(
            &format!("/_sandbox/dataverse/opportunities({key})"),
            json!({"description": "edited in Dynamics"}),
        )
        .await;
    let update = |tag: &str| Request::Update {
        connector: dv,
        entity: "opportunity".into(),
        key: key.clone(),
        changes: json!({"name": "Deal (synced)"}),
        if_match: Some(tag.to_string()),
    };
    let stale = run(&set, update(&first_tag)).await.err();
    let stale = stale.unwrap_or_else(|| panic!("a stale If-Match was accepted"));
    assert_eq!(
        (stale.kind, stale.status),
        (ErrorKind::Conflict, Some(412)),
        "{stale:?}"
    );
    assert!(stale.message.contains("RowVersion"), "{stale:?}");
    let fresh = ok(run(&set, get(dv, "opportunity", &key)).await);
    let fresh_tag = text(&fresh["@odata.etag"]);
    assert_ne!(fresh_tag, first_tag);
    let updated = ok(run(&set, update(&fresh_tag)).await);
    assert_eq!(updated["name"], "Deal (synced)", "{updated}");
    assert_eq!(updated["description"], "edited in Dynamics", "{updated}");
    let patches = admin
        .log(&[
            ("method", "PATCH"),
            ("path_prefix", "/api/data/v9.2/opportunities("),
        ])
        .await;
    assert_eq!(statuses(&patches), [412, 200], "{patches:?}");
    handle.shutdown().await;
}

// --- retries ----------------------------------------------------------------

#[tokio::test]
async fn throttled_requests_wait_for_retry_after() {
    let ((handle, p, set), admin) = start().await;
    let pc = id(&p, "partner_center");
    let created = create_referral(&set, pc, "Throttled").await;
    let referral_id = text(&created["id"]);
    let item = format!("{REFERRALS}/{referral_id}");
    admin
        .fault(json!({
            "service": "partner_center", "method": "GET", "path_prefix": item,
            "kind": "throttle", "retry_after": 1, "count": 2
        }))
        .await;
    let read = ok(run(&set, get(pc, "referral", &referral_id)).await);
    assert_eq!(read["id"], created["id"]);
    let gets = admin
        .log(&[("method", "GET"), ("path_prefix", &item)])
        .await;
    assert_eq!(statuses(&gets), [429, 429, 200], "{gets:?}");
    for pair in gets.windows(2) {
        let waited = arrived(&pair[1]) - arrived(&pair[0]);
        assert!(
            waited >= chrono::Duration::seconds(1),
            "the retry came {waited} after a 429 with Retry-After: 1"
        );
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn unavailable_answers_are_retried() {
    let ((handle, p, set), admin) = start().await;
    let dv = id(&p, "dynamics365");
    admin
        .fault(json!({
            "service": "dataverse", "method": "POST", "path_prefix": "/api/data/v9.2/accounts",
            "kind": "status", "code": 503, "count": 2
        }))
        .await;
    let account = ok(run(
        &set,
        Request::Create {
            connector: dv,
            entity: "account".into(),
            record: json!({"name": "Retried"}),
        },
    )
    .await);
    assert_eq!(account["name"], "Retried");
    let posts = admin
        .log(&[
            ("method", "POST"),
            ("path_prefix", "/api/data/v9.2/accounts"),
        ])
        .await;
    assert_eq!(statuses(&posts), [503, 503, 201], "{posts:?}");
    let found = ok(run(
        &set,
        Request::Find {
            connector: dv,
            entity: "account".into(),
            where_fields: vec![("name".into(), json!("Retried"))],
            select: Vec::new(),
            limit: None,
        },
    )
    .await);
    assert_eq!(
        found.as_array().map(Vec::len),
        Some(1),
        "created once: {found}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_never_retried() {
    let ((handle, p, set), admin) = start().await;
    let sf = id(&p, "salesforce");
    admin
        .fault(json!({
            "service": "salesforce", "method": "POST", "path_prefix": "/services/data/v62.0/sobjects/Account",
            "kind": "status", "code": 400, "count": 3
        }))
        .await;
    let error = run(
        &set,
        Request::Create {
            connector: sf,
            entity: "Account".into(),
            record: json!({"Name": "Refused"}),
        },
    )
    .await
    .err();
    assert_eq!(
        error.as_ref().map(|e| (e.kind, e.status)),
        Some((ErrorKind::Invalid, Some(400))),
        "{error:?}"
    );
    let posts = admin
        .log(&[
            ("method", "POST"),
            ("path_prefix", "/services/data/v62.0/sobjects/Account"),
        ])
        .await;
    assert_eq!(statuses(&posts), [400], "exactly one request: {posts:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let ((handle, p, set), admin) = start().await;
    let pc = id(&p, "partner_center");
    let created = create_referral(&set, pc, "Dropped").await;
    let referral_id = text(&created["id"]);
    let item = format!("{REFERRALS}/{referral_id}");
    admin
        .fault(json!({
            "service": "partner_center", "method": "GET", "path_prefix": item,
            "kind": "drop", "count": 2
        }))
        .await;
    let read = ok(run(&set, get(pc, "referral", &referral_id)).await);
    assert_eq!(read["id"], created["id"]);
    let gets = admin
        .log(&[("method", "GET"), ("path_prefix", &item)])
        .await;
    assert_eq!(statuses(&gets), [0, 0, 200], "{gets:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_dropped_create_is_not_repeated() {
    // The service may have acted on a POST whose answer was lost: repeating it
    // could create the record twice, so the error goes to the engine instead.
    let ((handle, p, set), admin) = start().await;
    let sf = id(&p, "salesforce");
    admin
        .fault(json!({
            "service": "salesforce", "method": "POST", "path_prefix": "/services/data/v62.0/sobjects/Account",
            "kind": "drop", "count": 1
        }))
        .await;
    let error = run(
        &set,
        Request::Create {
            connector: sf,
            entity: "Account".into(),
            record: json!({"Name": "Once"}),
        },
    )
    .await
    .err();
    assert_eq!(error.map(|e| e.kind), Some(ErrorKind::Transient));
    let posts = admin
        .log(&[
            ("method", "POST"),
            ("path_prefix", "/services/data/v62.0/sobjects/Account"),
        ])
        .await;
    assert_eq!(statuses(&posts), [0], "{posts:?}");
    handle.shutdown().await;
}

// --- paging -----------------------------------------------------------------

/// Page size 3 everywhere (through the admin API), and 11 records seeded per service.
async fn small_pages(admin: &Admin) {
    admin
        .patch(
            "/_sandbox/settings",
            json!({"partner_center_page_size": 3, "dataverse_max_page_size": 3, "salesforce_batch_size": 3}),
        )
        .await;
    let names: Vec<String> = (0..11).map(|i| format!("Paged {i:02}")).collect();
    let referrals: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "type": "Independent", "status": "New", "substatus": "Pending", "externalReferenceId": "paged"}))
        .collect();
    let accounts: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "address1_city": "Paging"}))
        .collect();
    let sf_accounts: Vec<Value> = names
        .iter()
        .map(|n| json!({"Name": n, "BillingCity": "Paging"}))
        .collect();
    admin
        .post(
            "/_sandbox/seed",
            json!({
                "partner_center": {"referrals": referrals},
                "dataverse": {"accounts": accounts},
                "salesforce": {"Account": sf_accounts}
            }),
        )
        .await;
}

/// The values of `field` in `rows`, sorted, after checking there is no duplicate.
fn distinct(rows: &Value, field: &str) -> Vec<String> {
    let mut values: Vec<String> = rows
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| text(&r[field]))
        .collect();
    let count = values.len();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), count, "a record came back twice: {rows}");
    values
}

fn paged_names() -> Vec<String> {
    (0..11).map(|i| format!("Paged {i:02}")).collect()
}

#[tokio::test]
async fn partner_center_lists_follow_next_links_over_many_pages() {
    let ((handle, p, set), admin) = start().await;
    small_pages(&admin).await;
    let pc = id(&p, "partner_center");
    let listed = ok(run(&set, call(pc, "list_referrals", json!({}))).await);
    assert_eq!(distinct(&listed, "id").len(), 11);
    assert_eq!(distinct(&listed, "name"), paged_names());
    let found = ok(run(
        &set,
        Request::Find {
            connector: pc,
            entity: "referral".into(),
            where_fields: vec![("externalReferenceId".into(), json!("paged"))],
            select: Vec::new(),
            limit: None,
        },
    )
    .await);
    assert_eq!(distinct(&found, "name"), paged_names());
    let pages = admin
        .log(&[("method", "GET"), ("path_prefix", REFERRALS)])
        .await;
    let followed = pages
        .iter()
        .filter(|e| text(&e["path"]).contains("skiptoken"))
        .count();
    assert_eq!(pages.len(), 8, "4 pages per list: {pages:?}");
    assert_eq!(followed, 6, "3 next links per list: {pages:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn dataverse_finds_follow_next_links_over_many_pages() {
    let ((handle, p, set), admin) = start().await;
    small_pages(&admin).await;
    let dv = id(&p, "dynamics365");
    let found = ok(run(
        &set,
        Request::Find {
            connector: dv,
            entity: "account".into(),
            where_fields: vec![("address1_city".into(), json!("Paging"))],
            select: Vec::new(),
            limit: None,
        },
    )
    .await);
    assert_eq!(distinct(&found, "accountid").len(), 11);
    assert_eq!(distinct(&found, "name"), paged_names());
    let pages = admin
        .log(&[
            ("method", "GET"),
            ("path_prefix", "/api/data/v9.2/accounts"),
        ])
        .await;
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert_eq!(
        pages
            .iter()
            .filter(|e| text(&e["path"]).contains("skiptoken"))
            .count(),
        3,
        "{pages:?}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn salesforce_queries_follow_next_records_urls_over_many_pages() {
    let ((handle, p, set), admin) = start().await;
    small_pages(&admin).await;
    let sf = id(&p, "salesforce");
    let rows = ok(run(
        &set,
        call(
            sf,
            "soql_query",
            json!({"query": "SELECT Id, Name FROM Account WHERE BillingCity = 'Paging'"}),
        ),
    )
    .await);
    assert_eq!(distinct(&rows, "Id").len(), 11);
    assert_eq!(distinct(&rows, "Name"), paged_names());
    let pages = admin
        .log(&[
            ("method", "GET"),
            ("path_prefix", "/services/data/v62.0/query"),
        ])
        .await;
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert_eq!(
        pages
            .iter()
            .filter(|e| text(&e["path"]).starts_with("/services/data/v62.0/query/"))
            .count(),
        3,
        "three nextRecordsUrl pages: {pages:?}"
    );
    handle.shutdown().await;
}

// --- JSON-Patch -------------------------------------------------------------

#[tokio::test]
async fn partner_center_updates_are_json_patches_with_nested_pointers() {
    let ((handle, p, set), admin) = start().await;
    let pc = id(&p, "partner_center");
    let created = create_referral(&set, pc, "Patched").await;
    let referral_id = text(&created["id"]);
    ok(run(
        &set,
        Request::Update {
            connector: pc,
            entity: "referral".into(),
            key: referral_id.clone(),
            changes: json!({
                "/details/dealValue": 25000,
                "/customerProfile/address/city": "Munich",
                "/details/closingDateTime": "2026-12-31T00:00:00Z",
                "externalReferenceId": "opp-7"
            }),
            if_match: None,
        },
    )
    .await);
    ok(run(
        &set,
        call(
            pc,
            "update_referral",
            json!({"id": referral_id, "patch": [
                {"op": "add", "path": "/team/-", "value": {"firstName": "Ada", "lastName": "L", "email": "ada@partner.example", "phoneNumber": "1"}},
                {"op": "replace", "path": "/status", "value": "Active"},
                {"op": "replace", "path": "/substatus", "value": "Accepted"}
            ]}),
        ),
    )
    .await);
    let read = ok(run(&set, get(pc, "referral", &referral_id)).await);
    assert_eq!(read["details"]["dealValue"], json!(25000), "{read}");
    assert_eq!(
        read["details"]["closingDateTime"], "2026-12-31T00:00:00Z",
        "{read}"
    );
    assert_eq!(read["details"]["notes"], "first notes", "untouched: {read}");
    assert_eq!(read["customerProfile"]["address"]["city"], "Munich");
    assert_eq!(
        read["customerProfile"]["address"]["postalCode"], "10115",
        "untouched: {read}"
    );
    assert_eq!(read["externalReferenceId"], "opp-7");
    assert_eq!(read["team"][0]["email"], "ada@partner.example", "{read}");
    assert_eq!(
        (&read["status"], &read["substatus"]),
        (&json!("Active"), &json!("Accepted"))
    );
    // On the wire: JSON-Patch arrays of replace/add ops with nested pointers.
    let patches = admin.writes(&[("method", "PATCH")]).await;
    assert_eq!(patches.len(), 2, "{patches:?}");
    let ops: Vec<&Value> = patches
        .iter()
        .flat_map(|e| e["body"].as_array().into_iter().flatten())
        .collect();
    assert!(
        ops.iter()
            .all(|o| matches!(o["op"].as_str(), Some("replace" | "add"))),
        "{ops:?}"
    );
    let paths: Vec<&str> = ops.iter().filter_map(|o| o["path"].as_str()).collect();
    for expected in [
        "/details/dealValue",
        "/customerProfile/address/city",
        "/details/closingDateTime",
        "/externalReferenceId",
        "/team/-",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    handle.shutdown().await;
}

// --- Salesforce -------------------------------------------------------------

#[tokio::test]
async fn salesforce_error_arrays_reach_the_connector_error() {
    let ((handle, p, set), _admin) = start().await;
    let sf = id(&p, "salesforce");
    let create = |record: Value| Request::Create {
        connector: sf,
        entity: "Opportunity".into(),
        record,
    };
    let missing = run(&set, create(json!({"Name": "No stage"}))).await.err();
    let missing = missing.unwrap_or_else(|| panic!("created without required fields"));
    assert_eq!(
        (missing.kind, missing.status),
        (ErrorKind::Invalid, Some(400))
    );
    assert!(
        missing.message.contains("REQUIRED_FIELD_MISSING")
            && missing.message.contains("Required fields are missing")
            && missing.message.contains("StageName"),
        "{missing:?}"
    );
    let bad_field = run(
        &set,
        create(json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-12-31", "Bogus__c": 1})),
    )
    .await
    .err();
    let bad_field = bad_field.unwrap_or_else(|| panic!("an unknown field was accepted"));
    assert_eq!(bad_field.status, Some(400));
    assert!(
        bad_field.message.contains("INVALID_FIELD") && bad_field.message.contains("Bogus__c"),
        "{bad_field:?}"
    );
    let soql = run(
        &set,
        call(
            sf,
            "soql_query",
            json!({"query": "SELECT Nope FROM Account"}),
        ),
    )
    .await
    .err();
    assert!(
        soql.as_ref()
            .is_some_and(|e| e.message.contains("INVALID_FIELD") && e.status == Some(400)),
        "{soql:?}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn salesforce_upsert_by_external_id_creates_201_then_updates_200() {
    let ((handle, p, set), admin) = start().await;
    let sf = id(&p, "salesforce");
    let upsert = |name: &str| {
        call(
            sf,
            "upsert_by_external_id",
            json!({
                "entity": "Opportunity", "field": "Referral_Identifier__c", "value": "ref-201",
                "record": {"Name": name, "StageName": "Prospecting", "CloseDate": "2026-12-31"}
            }),
        )
    };
    let created = ok(run(&set, upsert("First")).await);
    assert_eq!(created["created"], json!(true), "{created}");
    let updated = ok(run(&set, upsert("Second")).await);
    assert_eq!(updated["created"], json!(false), "{updated}");
    assert_eq!(created["id"], updated["id"]);
    let record = ok(run(&set, get(sf, "Opportunity", &text(&created["id"]))).await);
    assert_eq!(record["Name"], "Second");
    assert_eq!(record["Referral_Identifier__c"], "ref-201");
    let writes = admin
        .writes(&[(
            "path_prefix",
            "/services/data/v62.0/sobjects/Opportunity/Referral_Identifier__c/ref-201",
        )])
        .await;
    assert_eq!(statuses(&writes), [201, 200], "{writes:?}");
    handle.shutdown().await;
}

// --- tokens -----------------------------------------------------------------

/// Token requests in the log: `(service, grant_type)`.
async fn token_requests(admin: &Admin) -> Vec<(String, String)> {
    admin
        .log(&[("method", "POST")])
        .await
        .iter()
        .filter(|e| text(&e["path"]).ends_with("/token"))
        .map(|e| (text(&e["service"]), text(&e["body"]["grant_type"])))
        .collect()
}

#[tokio::test]
async fn expired_tokens_are_replaced_for_every_grant() {
    let ((handle, p, set), admin) = start().await;
    let (pc, dv, sf) = (
        id(&p, "partner_center"),
        id(&p, "dynamics365"),
        id(&p, "salesforce"),
    );
    let list = |connector, entity: &str| Request::Find {
        connector,
        entity: entity.into(),
        where_fields: Vec::new(),
        select: Vec::new(),
        limit: Some(1),
    };
    let all = [(pc, "referral"), (dv, "account"), (sf, "Account")];
    for (connector, entity) in all {
        ok(run(&set, list(connector, entity)).await);
    }
    let mut first = token_requests(&admin).await;
    first.sort();
    let expected = vec![
        ("login".to_string(), "client_credentials".to_string()),
        ("login".to_string(), "refresh_token".to_string()),
        ("salesforce".to_string(), "client_credentials".to_string()),
    ];
    assert_eq!(first, expected, "one token per connection");
    let expired = admin.post("/_sandbox/tokens/expire", json!({})).await;
    assert!(
        expired["expired"].as_u64().is_some_and(|n| n >= 3),
        "{expired}"
    );
    let since = admin
        .log(&[("limit", "1")])
        .await
        .first()
        .and_then(|e| e["seq"].as_u64())
        .unwrap_or_default()
        .to_string();
    for (connector, entity) in all {
        ok(run(&set, list(connector, entity)).await);
    }
    let mut all_tokens = token_requests(&admin).await;
    all_tokens.sort();
    let twice: Vec<(String, String)> = expected
        .iter()
        .flat_map(|e| [e.clone(), e.clone()])
        .collect();
    assert_eq!(all_tokens, twice, "a second token per connection");
    // Each service refused the expired token once, then took the new one.
    let after = admin.log(&[("since", &since), ("method", "GET")]).await;
    for service in ["partner_center", "dataverse", "salesforce"] {
        let answers: Vec<u64> = after
            .iter()
            .filter(|e| e["service"] == service)
            .filter_map(|e| e["status"].as_u64())
            .collect();
        assert_eq!(answers, [401, 200], "{service}: {after:?}");
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let settings = cosync::sandbox::Settings {
        token_lifetime_secs: 2,
        ..cosync::sandbox::Settings::default()
    };
    let ((handle, p, set), admin) = start_with(settings).await;
    let dv = id(&p, "dynamics365");
    let whoami = || Request::Find {
        connector: dv,
        entity: "account".into(),
        where_fields: Vec::new(),
        select: Vec::new(),
        limit: Some(1),
    };
    ok(run(&set, whoami()).await);
    // Past half the 2-second lifetime (the refresh margin), before it ends.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    ok(run(&set, whoami()).await);
    let tokens = token_requests(&admin).await;
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    let gets = admin.log(&[("service", "dataverse")]).await;
    assert_eq!(statuses(&gets), [200, 200], "never refused: {gets:?}");
    handle.shutdown().await;
}

// --- URLs from outside --------------------------------------------------------

#[tokio::test]
async fn a_foreign_resource_uri_is_refused_before_any_token_is_sent() {
    let ((handle, p, set), admin) = start().await;
    let pc = id(&p, "partner_center");
    // Another listener on 127.0.0.1 (the sandbox's own Salesforce, which would log
    // a request), and a name that is not configured anywhere.
    let salesforce = handle.urls().salesforce.trim_end_matches('/').to_string();
    for uri in [
        format!("{salesforce}/engagements/v1/referrals/abc"),
        "http://api.partnercenter.microsoft.com.invalid/engagements/v1/referrals/abc".to_string(),
        "https://api.partnercenter.microsoft.com/engagements/v1/referrals/abc".to_string(),
    ] {
        let refused = run(&set, call(pc, "get_referral", json!({"resource_uri": uri}))).await;
        let error = refused.err();
        assert!(
            error
                .as_ref()
                .is_some_and(|e| e.kind == ErrorKind::Invalid && e.message.contains("refused")),
            "{uri}: {error:?}"
        );
    }
    let dv = id(&p, "dynamics365");
    let delta = format!("{salesforce}/api/data/v9.2/opportunities?$deltatoken=1");
    let refused = run(&set, call(dv, "changes", json!({"delta_link": delta}))).await;
    assert!(refused.is_err(), "{refused:?}");
    let log = admin.log(&[]).await;
    assert!(log.is_empty(), "no request at all, no token: {log:?}");
    handle.shutdown().await;
}

// --- Swagger ------------------------------------------------------------------

#[tokio::test]
async fn referral_bodies_sent_to_the_sandbox_validate_against_the_swagger_schema() {
    let ((handle, p, set), admin) = start().await;
    let pc = id(&p, "partner_center");
    let mut record = referral_record("Swagger");
    record["customerProfile"]["team"] = json!([{"firstName": "Ada", "lastName": "L", "email": "ada@contoso.example", "phoneNumber": "1"}]);
    record["consent"] =
        json!({"consentToContact": true, "consentToShareReferralWithMicrosoftSellers": true});
    record["inviteContext"] =
        json!({"assistanceRequestCode": "ProofOfConceptOrDemo", "notes": "help"});
    record["target"] = json!([{"type": "SolutionProfile", "id": "SOL-12345-ABC"}]);
    record["details"]["requirements"] = json!({"solutions": [{"id": "SOL-12345-ABC"}]});
    let created = ok(run(
        &set,
        Request::Create {
            connector: pc,
            entity: "referral".into(),
            record,
        },
    )
    .await);
    // A PUT of the whole referral as read (links, eTag, @odata.context and all).
    let mut read = ok(run(&set, get(pc, "referral", &text(&created["id"]))).await);
    read["details"]["notes"] = json!("replaced");
    ok(run(
        &set,
        call(pc, "replace_referral", json!({"referral": read})),
    )
    .await);
    let validator = referral_validator();
    let posts = admin
        .writes(&[("method", "POST"), ("path_prefix", REFERRALS)])
        .await;
    let puts = admin
        .writes(&[("method", "PUT"), ("path_prefix", REFERRALS)])
        .await;
    assert_eq!((posts.len(), puts.len()), (1, 1), "{posts:?} {puts:?}");
    for entry in posts.iter().chain(&puts) {
        let body = &entry["body"];
        assert!(body.is_object(), "{entry}");
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{body}");
        assert!(body.get("links").is_none(), "{body}");
    }
    handle.shutdown().await;
}

// --- more of the documented wire behaviour ----------------------------------------

#[tokio::test]
async fn salesforce_update_with_a_stale_modstamp_is_a_conflict_until_re_read() {
    let ((handle, p, set), admin) = start().await;
    let sf = id(&p, "salesforce");
    let created = ok(run(
        &set,
        Request::Create {
            connector: sf,
            entity: "Opportunity".into(),
            record: json!({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-12-31"}),
        },
    )
    .await);
    let key = text(&created["Id"]);
    let first_stamp = text(&created["SystemModstamp"]);
    assert!(!first_stamp.is_empty(), "{created}");
    // A user edits the opportunity in Salesforce meanwhile.
    admin
        .patch(
            &format!("/_sandbox/salesforce/Opportunity/{key}"),
            json!({"Description": "edited in Salesforce"}),
        )
        .await;
    let update = |stamp: &str| Request::Update {
        connector: sf,
        entity: "Opportunity".into(),
        key: key.clone(),
        changes: json!({"Amount": 5000}),
        if_match: Some(stamp.to_string()),
    };
    let stale = run(&set, update(&first_stamp)).await.err();
    assert_eq!(
        stale.as_ref().map(|e| (e.kind, e.status)),
        Some((ErrorKind::Conflict, Some(412))),
        "{stale:?}"
    );
    let fresh = ok(run(&set, get(sf, "Opportunity", &key)).await);
    let fresh_stamp = text(&fresh["SystemModstamp"]);
    assert_ne!(fresh_stamp, first_stamp);
    let updated = ok(run(&set, update(&fresh_stamp)).await);
    assert_eq!(updated["Amount"], json!(5000.0), "{updated}");
    assert_eq!(updated["Description"], "edited in Salesforce", "{updated}");
    let writes = admin.writes(&[("method", "PATCH")]).await;
    assert_eq!(
        writes.len(),
        1,
        "the stale update wrote nothing: {writes:?}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_longest_wait_ends_the_call_as_throttled() {
    let ((handle, p, set), admin) = start().await;
    let dv = id(&p, "dynamics365");
    admin
        .fault(json!({
            "service": "dataverse", "method": "GET", "path_prefix": "/api/data/v9.2/accounts",
            "kind": "throttle", "retry_after": 3600, "count": 1
        }))
        .await;
    let error = run(
        &set,
        Request::Find {
            connector: dv,
            entity: "account".into(),
            where_fields: Vec::new(),
            select: Vec::new(),
            limit: None,
        },
    )
    .await
    .err();
    let error = error.unwrap_or_else(|| panic!("the throttled call succeeded"));
    assert_eq!(
        (error.kind, error.status),
        (ErrorKind::Throttled, Some(429))
    );
    assert!(error.message.contains("retry after 3600s"), "{error:?}");
    let gets = admin.log(&[("service", "dataverse")]).await;
    assert_eq!(statuses(&gets), [429], "{gets:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn salesforce_request_limit_exceeded_is_a_quota_signal_and_not_retried() {
    let ((handle, p, set), admin) = start().await;
    let sf = id(&p, "salesforce");
    let find = || Request::Find {
        connector: sf,
        entity: "Account".into(),
        where_fields: Vec::new(),
        select: vec!["Name".into()],
        limit: None,
    };
    ok(run(&set, find()).await);
    admin
        .patch("/_sandbox/settings", json!({"salesforce_api_limit": 1}))
        .await;
    let error = run(&set, find()).await.err();
    let error = error.unwrap_or_else(|| panic!("the allocation was not enforced"));
    assert_eq!(
        (error.kind, error.status),
        (ErrorKind::Throttled, Some(403))
    );
    assert!(
        error.message.contains("REQUEST_LIMIT_EXCEEDED"),
        "{error:?}"
    );
    let queries = admin
        .log(&[("path_prefix", "/services/data/v62.0/query")])
        .await;
    assert_eq!(statuses(&queries), [200, 403], "{queries:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn dataverse_upsert_by_key_creates_then_updates_and_updates_never_create() {
    let ((handle, p, set), admin) = start().await;
    let dv = id(&p, "dynamics365");
    let key = "6d1b7d0c-2f55-4a8e-9c1e-3b5f7a9d0e11";
    let upsert = |name: &str| Request::Upsert {
        connector: dv,
        entity: "account".into(),
        match_fields: vec![("accountid".into(), json!(key))],
        record: json!({"name": name}),
    };
    let created = ok(run(&set, upsert("First")).await);
    assert_eq!(created["accountid"], key, "{created}");
    let updated = ok(run(&set, upsert("Second")).await);
    assert_eq!(updated["name"], "Second", "{updated}");
    let upserts = admin
        .writes(&[("path_prefix", &format!("/api/data/v9.2/accounts({key})"))])
        .await;
    assert_eq!(statuses(&upserts), [201, 200], "{upserts:?}");
    // An update (If-Match: *) of a row that does not exist is a 404, not a create.
    let missing = "0b0c5b1e-7a0e-4d7b-8f52-1b8c2d3e4f50";
    let error = run(
        &set,
        Request::Update {
            connector: dv,
            entity: "account".into(),
            key: missing.into(),
            changes: json!({"name": "Ghost"}),
            if_match: None,
        },
    )
    .await
    .err();
    let error = error.unwrap_or_else(|| panic!("the update created a row"));
    assert_eq!((error.kind, error.status), (ErrorKind::NotFound, Some(404)));
    assert!(error.message.contains("Does Not Exist"), "{error:?}");
    let ghost = run(&set, get(dv, "account", missing)).await.err();
    assert_eq!(ghost.map(|e| e.kind), Some(ErrorKind::NotFound));
    handle.shutdown().await;
}

#[tokio::test]
async fn salesforce_composite_updates_send_at_most_200_records_per_request() {
    let ((handle, p, set), admin) = start().await;
    let sf = id(&p, "salesforce");
    let accounts: Vec<Value> = (0..205)
        .map(|i| json!({"Name": format!("Bulk {i:03}"), "BillingCity": "Bulk"}))
        .collect();
    admin
        .post(
            "/_sandbox/seed",
            json!({"salesforce": {"Account": accounts}}),
        )
        .await;
    let rows = ok(run(
        &set,
        call(
            sf,
            "soql_query",
            json!({"query": "SELECT Id FROM Account WHERE BillingCity = 'Bulk'"}),
        ),
    )
    .await);
    let records: Vec<Value> = rows
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!({"Id": r["Id"].clone(), "BillingCity": "Bulk edited"}))
        .collect();
    assert_eq!(records.len(), 205);
    let results = ok(run(
        &set,
        call(
            sf,
            "composite_update",
            json!({"entity": "Account", "records": records}),
        ),
    )
    .await);
    let results = results.as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 205);
    assert!(
        results.iter().all(|r| r["success"] == json!(true)),
        "{results:?}"
    );
    let batches = admin
        .writes(&[("path_prefix", "/services/data/v62.0/composite/sobjects")])
        .await;
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| b["body"]["records"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [200, 5], "{batches:?}");
    let edited = ok(run(
        &set,
        call(
            sf,
            "soql_query",
            json!({"query": "SELECT Id FROM Account WHERE BillingCity = 'Bulk edited'"}),
        ),
    )
    .await);
    assert_eq!(edited.as_array().map(Vec::len), Some(205));
    handle.shutdown().await;
}

#[tokio::test]
async fn a_throttled_token_endpoint_is_retried_after_retry_after() {
    let ((handle, p, set), admin) = start().await;
    let dv = id(&p, "dynamics365");
    admin
        .fault(json!({"service": "login", "kind": "throttle", "retry_after": 1, "count": 1}))
        .await;
    ok(run(
        &set,
        Request::Find {
            connector: dv,
            entity: "account".into(),
            where_fields: Vec::new(),
            select: Vec::new(),
            limit: Some(1),
        },
    )
    .await);
    let tokens = admin.log(&[("service", "login")]).await;
    assert_eq!(statuses(&tokens), [429, 200], "{tokens:?}");
    let waited = arrived(&tokens[1]) - arrived(&tokens[0]);
    assert!(
        waited >= chrono::Duration::seconds(1),
        "the token request was repeated {waited} after a 429 with Retry-After: 1"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn refused_credentials_are_not_retried() {
    let ((handle, p, set), admin) = start().await;
    let dv = id(&p, "dynamics365");
    admin
        .fault(json!({"service": "login", "kind": "status", "code": 401, "count": 3}))
        .await;
    let error = run(
        &set,
        Request::Find {
            connector: dv,
            entity: "account".into(),
            where_fields: Vec::new(),
            select: Vec::new(),
            limit: Some(1),
        },
    )
    .await
    .err();
    assert_eq!(error.map(|e| e.kind), Some(ErrorKind::Unauthorized));
    let tokens = admin.log(&[("service", "login")]).await;
    assert_eq!(statuses(&tokens), [401], "{tokens:?}");
    assert!(admin.log(&[("service", "dataverse")]).await.is_empty());
    handle.shutdown().await;
}

#[tokio::test]
async fn an_unavailable_salesforce_token_endpoint_is_retried() {
    let ((handle, p, set), admin) = start().await;
    let sf = id(&p, "salesforce");
    admin
        .fault(json!({
            "service": "salesforce", "path_prefix": "/services/oauth2/token",
            "kind": "status", "code": 503, "count": 2
        }))
        .await;
    let found = run(
        &set,
        Request::Find {
            connector: sf,
            entity: "Account".into(),
            where_fields: Vec::new(),
            select: vec!["Name".into()],
            limit: None,
        },
    )
    .await;
    assert!(found.is_ok(), "{found:?}");
    let tokens = admin
        .log(&[("path_prefix", "/services/oauth2/token")])
        .await;
    assert_eq!(statuses(&tokens), [503, 503, 200], "{tokens:?}");
    handle.shutdown().await;
}
