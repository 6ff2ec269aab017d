//! The scenarios, step by step, for each CRM: scenario 1 in [`crm_to_pc`],
//! scenario 2 here.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Admin, Crm, StepResult};

mod crm_to_pc;

/// The "new deal" Microsoft shares: the shipped test fixture, as Partner Center
/// would hold it before the partner sees it.
const NEW_DEAL: &str = include_str!("../../mappings/tests/fixtures/referral-new-shared.json");

const TO_PC: &str = "CRM → Partner Center";
const TO_CRM: &str = "Partner Center → CRM";

/// Polls `check` every 50 ms until it yields a value or `timeout` passes.
async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> Result<(Duration, Value), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<Value>, String>>,
{
    let started = Instant::now();
    let mut last_error = None;
    while started.elapsed() < timeout {
        match check().await {
            Ok(Some(v)) => return Ok((started.elapsed(), v)),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(match last_error {
        Some(e) => format!("not synced within {timeout:?} (last error: {e})"),
        None => format!("not synced within {timeout:?}"),
    })
}

fn text<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn number(v: &Value, pointer: &str) -> Option<f64> {
    match v.pointer(pointer)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A new shared deal as Partner Center would offer it (the shipped
/// `referral-new-shared.json` fixture) named `name`, without what the server
/// assigns (id, eTag, times, links, ...).
pub fn new_deal(name: &str) -> Result<Value, String> {
    let mut r: Value = serde_json::from_str(NEW_DEAL).map_err(|e| e.to_string())?;
    if let Some(o) = r.as_object_mut() {
        for k in [
            "id",
            "eTag",
            "engagementId",
            "createdDateTime",
            "updatedDateTime",
            "acceptedDateTime",
            "expirationDateTime",
            "closedDateTime",
            "links",
            "organizationId",
            "organizationName",
            "externalReferenceId",
            "statusReason",
        ] {
            o.remove(k);
        }
        o.insert("name".into(), json!(name));
    }
    Ok(r)
}

/// One step's outcome.
struct Recorder {
    crm: Crm,
    results: Vec<StepResult>,
}

impl Recorder {
    fn record(
        &mut self,
        scenario: u8,
        action: &str,
        direction: &str,
        outcome: Result<(Duration, String), String>,
    ) -> bool {
        let (ok, took, detail) = match outcome {
            Ok((took, detail)) => (true, took, detail),
            Err(e) => (false, Duration::ZERO, e),
        };
        self.results.push(StepResult {
            crm: self.crm,
            scenario,
            action: action.to_string(),
            direction: direction.to_string(),
            ok,
            took,
            detail,
        });
        ok
    }

    /// The id `id` reads in `created`; else records the step as failed (with
    /// the error, or `missing`) and gives `None`.
    fn created_id(
        &mut self,
        scenario: u8,
        action: &str,
        direction: &str,
        created: Result<Value, String>,
        id: fn(&Value) -> Option<&str>,
        missing: &str,
    ) -> Option<String> {
        let id = created.and_then(|v| id(&v).map(str::to_string).ok_or_else(|| missing.into()));
        match id {
            Ok(id) => Some(id),
            Err(e) => {
                self.record(scenario, action, direction, Err(e));
                None
            }
        }
    }
}

/// Plays both scenarios against one CRM; a failed step ends its scenario.
pub async fn play(admin: &Admin, crm: Crm, timeout: Duration) -> Vec<StepResult> {
    let mut rec = Recorder {
        crm,
        results: Vec::new(),
    };
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    crm_to_pc::play(admin, &mut rec, timeout, &tag, crm).await;
    match crm {
        Crm::Dynamics365 => pc_to_dynamics365(admin, &mut rec, timeout, &tag).await,
        Crm::Salesforce => pc_to_salesforce(admin, &mut rec, timeout, &tag).await,
    }
    rec.results
}

/// The referral whose `externalReferenceId` is `id`.
async fn referral_for(admin: &Admin, id: &str) -> Result<Option<Value>, String> {
    Ok(admin
        .referrals()
        .await?
        .into_iter()
        .find(|r| text(r, "/externalReferenceId") == Some(id)))
}

async fn referral(admin: &Admin, id: &str) -> Result<Value, String> {
    admin.get(&format!("partner_center/referrals/{id}")).await
}

fn solutions(r: &Value) -> Vec<String> {
    r.pointer("/details/requirements/solutions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| text(s, "/id").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn pc_to_dynamics365(admin: &Admin, rec: &mut Recorder, timeout: Duration, tag: &str) {
    let name = format!("Contoso - Azure data platform migration {tag}");
    let check = |referral_id: String| {
        move || {
            let referral_id = referral_id.clone();
            async move {
                let rows = admin
                    .dataverse(
                        "opportunities",
                        &format!("cosell_referralidentifier eq '{referral_id}'"),
                    )
                    .await?;
                Ok(rows.into_iter().next())
            }
        }
    };
    pc_to_crm(admin, rec, timeout, &name, check, |o| {
        let filled = ["/cosell_referrallink", "/cosell_products", "/cosell_audit", "/cosell_lastsyncedon"]
            .iter()
            .all(|p| o.pointer(p).is_some_and(|v| !v.is_null()))
            && o.pointer("/cosell_howcanmicrosofthelp").is_some_and(|v| !v.is_null());
        filled.then(|| {
            format!(
                "opportunity {} with Referral Link, How can Microsoft help {}, Products {}, Audit, synced mark",
                text(o, "/opportunityid").unwrap_or("?"),
                o.pointer("/cosell_howcanmicrosofthelp").cloned().unwrap_or_default(),
                text(o, "/cosell_products").unwrap_or("?")
            )
        })
    }, |o| number(o, "/estimatedvalue") == Some(99000.0) && text(o, "/estimatedclosedate").is_some_and(|d| d.starts_with("2027-01-29")),
       |o| number(o, "/statecode") == Some(1.0))
    .await;
}

async fn pc_to_salesforce(admin: &Admin, rec: &mut Recorder, timeout: Duration, tag: &str) {
    let name = format!("Contoso - Azure data platform migration {tag}");
    let check = |referral_id: String| {
        move || {
            let referral_id = referral_id.clone();
            async move {
                let rows = admin.salesforce("Opportunity").await?;
                Ok(rows
                    .into_iter()
                    .find(|o| text(o, "/Referral_Identifier__c") == Some(referral_id.as_str())))
            }
        }
    };
    pc_to_crm(admin, rec, timeout, &name, check, |o| {
        let filled = ["/Referral_Link__c", "/Products__c", "/Audit__c", "/How_can_Microsoft_help__c", "/Last_Synced_With_Partner_Center__c"]
            .iter()
            .all(|p| o.pointer(p).is_some_and(|v| !v.is_null()));
        filled.then(|| {
            format!(
                "opportunity {} with Referral Link, How can Microsoft help {}, Products {}, Audit, synced mark",
                text(o, "/Id").unwrap_or("?"),
                text(o, "/How_can_Microsoft_help__c").unwrap_or("?"),
                text(o, "/Products__c").unwrap_or("?")
            )
        })
    }, |o| number(o, "/Amount") == Some(99000.0) && text(o, "/CloseDate").is_some_and(|d| d.starts_with("2027-01-29")),
       |o| o.pointer("/IsWon") == Some(&json!(true)) || text(o, "/StageName") == Some("Closed Won"))
    .await;
}

/// Scenario 2 for any CRM: `find(referral_id)` builds a poll for the CRM record
/// linked to the referral; `filled` checks the co-sell fields, `updated` the
/// deal value and close date, `won` the closure.
#[allow(clippy::too_many_arguments)]
async fn pc_to_crm<Find, Poll, Fut>(
    admin: &Admin,
    rec: &mut Recorder,
    timeout: Duration,
    name: &str,
    find: Find,
    filled: impl Fn(&Value) -> Option<String>,
    updated: impl Fn(&Value) -> bool,
    won: impl Fn(&Value) -> bool,
) where
    Find: Fn(String) -> Poll,
    Poll: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<Value>, String>>,
{
    let action = "New deal shared in Partner Center";
    let started = Instant::now();
    let body = match new_deal(name) {
        Ok(b) => b,
        Err(e) => {
            rec.record(2, action, TO_CRM, Err(e));
            return;
        }
    };
    let created = admin.post("partner_center/referrals", &body).await;
    let id: fn(&Value) -> Option<&str> = |r| text(r, "/id");
    let Some(referral_id) = rec.created_id(2, action, TO_CRM, created, id, "no referral id") else {
        return;
    };
    let mut poll = find(referral_id.clone());
    let arrived = wait_for(timeout, || {
        let fut = poll();
        let filled = &filled;
        async move { Ok(fut.await?.filter(|o| filled(o).is_some())) }
    })
    .await;
    let ok = rec.record(
        2,
        action,
        TO_CRM,
        arrived.map(|(_, o)| (started.elapsed(), filled(&o).unwrap_or_default())),
    );
    if !ok {
        return;
    }
    // The partner accepts the referral with a new deal value and close date.
    let started = Instant::now();
    admin.settle(timeout).await;
    let accepted = admin
        .patch(
            &format!("partner_center/referrals/{referral_id}"),
            &json!({"status": "Active", "substatus": "Accepted", "details": {"dealValue": 99000, "closingDateTime": "2027-01-29T00:00:00Z"}}),
        )
        .await;
    if let Err(e) = accepted {
        rec.record(
            2,
            "Accepted; deal value 99,000, close date 2027-01-29",
            TO_CRM,
            Err(e),
        );
        return;
    }
    let mut poll = find(referral_id.clone());
    let arrived = wait_for(timeout, || {
        let fut = poll();
        let updated = &updated;
        async move { Ok(fut.await?.filter(|o| updated(o))) }
    })
    .await;
    let ok = rec.record(
        2,
        "Accepted; deal value 99,000, close date 2027-01-29",
        TO_CRM,
        arrived.map(|_| {
            (
                started.elapsed(),
                "opportunity value 99000, close date 2027-01-29".into(),
            )
        }),
    );
    if !ok {
        return;
    }
    let started = Instant::now();
    admin.settle(timeout).await;
    if let Err(e) = admin
        .patch(
            &format!("partner_center/referrals/{referral_id}"),
            &json!({"status": "Closed", "substatus": "Won"}),
        )
        .await
    {
        rec.record(2, "Won in Partner Center", TO_CRM, Err(e));
        return;
    }
    let mut poll = find(referral_id.clone());
    let arrived = wait_for(timeout, || {
        let fut = poll();
        let won = &won;
        async move { Ok(fut.await?.filter(|o| won(o))) }
    })
    .await;
    let closed = match &arrived {
        Ok(_) => referral(admin, &referral_id).await.ok(),
        Err(_) => None,
    };
    rec.record(
        2,
        "Won in Partner Center",
        TO_CRM,
        arrived.map(|_| {
            (
                started.elapsed(),
                format!(
                    "opportunity won (referral {}/{})",
                    closed
                        .as_ref()
                        .and_then(|r| text(r, "/status"))
                        .unwrap_or("?"),
                    closed
                        .as_ref()
                        .and_then(|r| text(r, "/substatus"))
                        .unwrap_or("?")
                ),
            )
        }),
    );
}
