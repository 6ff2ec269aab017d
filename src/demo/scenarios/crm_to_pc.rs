//! Scenario 1 (CRM → Partner Center) for any CRM: one implementation, told by
//! a [`Side`] what differs between Dynamics 365 and Salesforce.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Admin, Crm, Recorder, TO_PC, number, referral_for, solutions, text, wait_for};

/// What scenario 1 needs to know about one CRM's opportunities.
struct Side {
    /// Where opportunities are created through the admin API.
    create: &'static str,
    /// The admin API path of one opportunity, from its id.
    record: fn(&str) -> String,
    /// The opportunity's id in the answer to its creation.
    id: fn(&Value) -> Option<&str>,
    /// The field (a JSON pointer) that carries the referral's identifier once synced.
    referral_identifier: &'static str,
    /// The field the CRM edit sets to 240,000.
    value_field: &'static str,
    /// What the CRM edit is called in the table.
    edit_action: &'static str,
}

/// The opportunity to create, once the customer is set up.
struct NewOpportunity {
    /// Its body.
    body: Value,
    /// A record that can only be made once the opportunity exists.
    linked: Option<Linked>,
}

/// A record created right after the opportunity and pointing at it.
struct Linked {
    /// Where it is created.
    path: &'static str,
    /// What its step is called in the table if it fails.
    action: &'static str,
    /// Its body, without the opportunity.
    body: Value,
    /// The field of `body` that takes the opportunity's id.
    opportunity_field: &'static str,
}

/// Dynamics 365: Dataverse `opportunities` with the `cosell_` columns.
const DYNAMICS365: Side = Side {
    create: "dataverse/opportunities",
    record: |id| format!("dataverse/opportunities({id})"),
    id: |o| text(o, "/opportunityid"),
    referral_identifier: "/cosell_referralidentifier",
    value_field: "estimatedvalue",
    edit_action: "CRM edit: estimated revenue 240,000",
};

/// Salesforce: `Opportunity` with the co-sell custom fields.
const SALESFORCE: Side = Side {
    create: "salesforce/Opportunity",
    record: |id| format!("salesforce/Opportunity/{id}"),
    id: salesforce_id,
    referral_identifier: "/Referral_Identifier__c",
    value_field: "Amount",
    edit_action: "CRM edit: amount 240,000",
};

/// Salesforce answers a creation with `id`, a read with `Id`.
fn salesforce_id(v: &Value) -> Option<&str> {
    text(v, "/id").or_else(|| text(v, "/Id"))
}

/// Plays scenario 1 against `crm`; a failed step ends it.
pub(super) async fn play(
    admin: &Admin,
    rec: &mut Recorder,
    timeout: Duration,
    tag: &str,
    crm: Crm,
) {
    match crm {
        Crm::Dynamics365 => {
            crm_to_pc(admin, rec, timeout, &DYNAMICS365, dynamics365(admin, tag)).await
        }
        Crm::Salesforce => {
            crm_to_pc(admin, rec, timeout, &SALESFORCE, salesforce(admin, tag)).await
        }
    }
}

/// POSTs `body` to `path`; the new record's id.
async fn create(
    admin: &Admin,
    path: &str,
    body: &Value,
    id: fn(&Value) -> Option<&str>,
    what: &str,
) -> Result<String, String> {
    let record = admin.post(path, body).await?;
    Ok(id(&record)
        .ok_or_else(|| format!("the {what} has no id"))?
        .to_string())
}

/// A Dataverse account's id.
fn accountid(v: &Value) -> Option<&str> {
    text(v, "/accountid")
}

/// A Dataverse contact's id.
fn contactid(v: &Value) -> Option<&str> {
    text(v, "/contactid")
}

/// The Dataverse customer (account, contact, US dollar) and the opportunity.
async fn dynamics365(admin: &Admin, tag: &str) -> Result<NewOpportunity, String> {
    let currency = admin
        .post("dataverse/transactioncurrencies", &json!({"isocurrencycode": "USD", "currencyname": "US Dollar", "currencysymbol": "$", "currencyprecision": 2, "exchangerate": 1}))
        .await;
    let currency = match currency {
        Ok(c) => c,
        // Already there from an earlier run against the same sandbox.
        Err(_) => admin
            .dataverse("transactioncurrencies", "isocurrencycode eq 'USD'")
            .await?
            .into_iter()
            .next()
            .ok_or("no USD currency")?,
    };
    let account = json!({"name": "Tailspin Toys", "address1_line1": "20 Station Road", "address1_city": "Cambridge", "address1_postalcode": "CB1 2JD", "address1_country": "GB"});
    let account_id = create(admin, "dataverse/accounts", &account, accountid, "account").await?;
    let contact = json!({"firstname": "Jonas", "lastname": "Hasselberg", "emailaddress1": "jonas@tailspintoys.example", "telephone1": "+44 1223 555 0101", "parentcustomerid_account@odata.bind": format!("/accounts({account_id})")});
    let contact_id = create(admin, "dataverse/contacts", &contact, contactid, "contact").await?;
    let currency_id = text(&currency, "/transactioncurrencyid").ok_or("the currency has no id")?;
    let body = json!({
        "name": format!("Tailspin Toys - Copilot adoption {tag}"),
        "description": "Roll out Microsoft 365 Copilot with an adoption program.",
        "estimatedvalue": 180000,
        "isrevenuesystemcalculated": false,
        "estimatedclosedate": "2027-03-31",
        "customerid_account@odata.bind": format!("/accounts({account_id})"),
        "parentcontactid@odata.bind": format!("/contacts({contact_id})"),
        "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({currency_id})"),
        "cosell_syncwithpartnercenter": true,
        "cosell_howcanmicrosofthelp": 100000003,
        "cosell_products": "SOL-24680-TTY, SOL-13579-CPA",
        "cosell_referralvisibility": true
    });
    Ok(NewOpportunity { body, linked: None })
}

/// The Salesforce customer (account, contact) and the opportunity, whose
/// contact role can only follow it.
async fn salesforce(admin: &Admin, tag: &str) -> Result<NewOpportunity, String> {
    let account = json!({"Name": "Tailspin Toys", "BillingStreet": "20 Station Road", "BillingCity": "Cambridge", "BillingPostalCode": "CB1 2JD", "BillingCountry": "GB"});
    let account_id = create(
        admin,
        "salesforce/Account",
        &account,
        salesforce_id,
        "account",
    )
    .await?;
    let contact = json!({"FirstName": "Jonas", "LastName": "Hasselberg", "Email": "jonas@tailspintoys.example", "Phone": "+44 1223 555 0101", "AccountId": account_id});
    let contact_id = create(
        admin,
        "salesforce/Contact",
        &contact,
        salesforce_id,
        "contact",
    )
    .await?;
    let body = json!({
        "Name": format!("Tailspin Toys - Copilot adoption {tag}"),
        "Description": "Roll out Microsoft 365 Copilot with an adoption program.",
        "Amount": 180000,
        "CurrencyIsoCode": "USD",
        "CloseDate": "2027-03-31",
        "StageName": "Needs Analysis",
        "AccountId": account_id,
        "Sync_with_Partner_Center__c": true,
        "How_can_Microsoft_help__c": "Quotes or licensing",
        "Products__c": "SOL-24680-TTY, SOL-13579-CPA"
    });
    let linked = Linked {
        path: "salesforce/OpportunityContactRole",
        action: "Set up the opportunity's contact role",
        body: json!({"ContactId": contact_id, "IsPrimary": true, "Role": "Decision Maker"}),
        opportunity_field: "OpportunityId",
    };
    Ok(NewOpportunity {
        body,
        linked: Some(linked),
    })
}

/// Scenario 1 for any CRM: `setup` makes the customer and says what
/// opportunity to create; `side` says where it lives and how it is edited.
async fn crm_to_pc(
    admin: &Admin,
    rec: &mut Recorder,
    timeout: Duration,
    side: &Side,
    setup: impl Future<Output = Result<NewOpportunity, String>>,
) {
    let new = match setup.await {
        Ok(new) => new,
        Err(e) => {
            rec.record(1, "Set up the customer account and contact", TO_PC, Err(e));
            return;
        }
    };
    let started = Instant::now();
    let created = admin.post(side.create, &new.body).await;
    let action = "Opportunity created with Sync = Yes";
    let Some(opp_id) = rec.created_id(1, action, TO_PC, created, side.id, "no opportunity id")
    else {
        return;
    };
    if let Some(linked) = new.linked {
        let mut body = linked.body;
        if let Some(o) = body.as_object_mut() {
            o.insert(linked.opportunity_field.into(), json!(opp_id));
        }
        if let Err(e) = admin.post(linked.path, &body).await {
            rec.record(1, linked.action, TO_PC, Err(e));
            return;
        }
    }
    let record = (side.record)(&opp_id);
    // Synced = the referral exists and the opportunity carries its identifier.
    let found = wait_for(timeout, || async {
        let Some(r) = referral_for(admin, &opp_id).await? else {
            return Ok(None);
        };
        let o = admin.get(&record).await?;
        Ok(text(&o, side.referral_identifier).is_some().then_some(r))
    })
    .await;
    let ok = rec.record(
        1,
        "Opportunity created with Sync = Yes, help option, solutions",
        TO_PC,
        found.map(|(_, r)| {
            (
                started.elapsed(),
                format!(
                    "referral {} ({}/{}), deal value {}, solutions {}",
                    text(&r, "/id").unwrap_or("?"),
                    text(&r, "/status").unwrap_or("?"),
                    text(&r, "/substatus").unwrap_or("?"),
                    number(&r, "/details/dealValue").unwrap_or_default(),
                    solutions(&r).join(", ")
                ),
            )
        }),
    );
    if !ok {
        return;
    }
    let started = Instant::now();
    admin.settle(timeout).await;
    let mut edit = serde_json::Map::new();
    edit.insert(side.value_field.into(), json!(240000));
    if let Err(e) = admin.patch(&record, &Value::Object(edit)).await {
        rec.record(1, side.edit_action, TO_PC, Err(e));
        return;
    }
    let updated = wait_for(timeout, || async {
        Ok(referral_for(admin, &opp_id)
            .await?
            .filter(|r| number(r, "/details/dealValue") == Some(240000.0)))
    })
    .await;
    rec.record(
        1,
        side.edit_action,
        TO_PC,
        updated.map(|_| (started.elapsed(), "referral deal value 240000".to_string())),
    );
}
