use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::*;

fn shipped() -> CompiledProject {
    crate::compile::compile_folder(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"),
    )
}

/// A CRM in memory: opportunities with Dataverse-style eTags, counting calls.
#[derive(Default)]
struct Crm {
    rows: Mutex<HashMap<String, Value>>,
    version: AtomicU64,
    calls: AtomicU64,
    if_match: Mutex<Vec<Option<String>>>,
}

impl Crm {
    fn stamp(&self, mut record: Value) -> Value {
        let v = self.version.fetch_add(1, Ordering::Relaxed) + 1;
        record["@odata.etag"] = json!(format!("W/\"{v}\""));
        record
    }

    fn insert(&self, id: &str, referral: &str, value: f64) {
        let record = self.stamp(json!({"opportunityid": id, "cosell_referralidentifier": referral, "estimatedvalue": value}));
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.into(), record);
    }

    /// A person's edit: the row moves to a new version behind the mirror.
    fn edit(&self, id: &str, value: f64) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = rows.get_mut(id) {
            r["estimatedvalue"] = json!(value);
            *r = self.stamp(r.clone());
        }
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl ConnectorSet for Crm {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let answer = match request {
            Request::Get { key, .. } => self
                .rows
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned()
                .ok_or_else(|| ConnectorError::new(ErrorKind::NotFound, "no such row")),
            Request::Find { where_fields, .. } => {
                let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
                let mut found: Vec<Value> = rows
                    .values()
                    .filter(|r| where_fields.iter().all(|(f, v)| r.get(f) == Some(v)))
                    .cloned()
                    .collect();
                found.truncate(1);
                Ok(Value::Array(found))
            }
            Request::Update {
                key,
                changes,
                if_match,
                ..
            } => {
                self.if_match
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(if_match.clone());
                let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
                match rows.get_mut(&key) {
                    None => Err(ConnectorError::new(ErrorKind::NotFound, "no such row")),
                    Some(r)
                        if if_match
                            .as_ref()
                            .is_some_and(|m| Some(m.as_str()) != r["@odata.etag"].as_str()) =>
                    {
                        Err(ConnectorError::new(ErrorKind::Conflict, "412"))
                    }
                    Some(r) => {
                        if let (Some(o), Some(c)) = (r.as_object_mut(), changes.as_object()) {
                            o.extend(c.clone());
                        }
                        *r = self.stamp(r.clone());
                        Ok(r.clone())
                    }
                }
            }
            Request::Create { record, .. } => Ok(self.stamp(record)),
            Request::Upsert { record, .. } => Ok(self.stamp(record)),
            Request::Call { .. } => Ok(json!({})),
        };
        Box::pin(async move { answer })
    }

    fn writes(&self, _: ConnectorId, operation: &str) -> bool {
        operation.ends_with("_opportunity")
    }
}

fn find(c: ConnectorId, referral: &str) -> Request {
    Request::Find {
        connector: c,
        entity: "opportunity".into(),
        where_fields: vec![("cosell_referralidentifier".into(), json!(referral))],
        select: Vec::new(),
        limit: Some(1),
    }
}

fn update(c: ConnectorId, id: &str, value: f64) -> Request {
    Request::Update {
        connector: c,
        entity: "opportunity".into(),
        key: id.into(),
        changes: json!({"estimatedvalue": value}),
        if_match: None,
    }
}

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}

fn err<T: std::fmt::Debug, E>(r: Result<T, E>) -> E {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// The shipped project, its Dynamics 365 connector, a CRM holding opportunity
/// `o1` (referral `r1`, estimated value 100) and an empty mirror.
struct Fixture {
    p: CompiledProject,
    c: ConnectorId,
    crm: Crm,
    mirror: Mirror,
}

fn fixture() -> Fixture {
    let p = shipped();
    let c = crm_id(&p);
    let crm = Crm::default();
    crm.insert("o1", "r1", 100.0);
    Fixture {
        p,
        c,
        crm,
        mirror: Mirror::new(MirrorLimits::default()),
    }
}

fn crm_id(p: &CompiledProject) -> ConnectorId {
    p.connector_id("dynamics365").unwrap_or(ConnectorId(0))
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map(|rt| rt.block_on(f))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_second_run_reads_from_the_mirror_and_writes_with_the_mirrored_version() {
    let Fixture { p, c, crm, mirror } = fixture();
    block(async {
        let run1 = Cached::new(&crm, &mirror, &p);
        let found = ok(run1.execute(find(c, "r1")).await);
        assert_eq!(found[0]["opportunityid"], "o1");
        assert_eq!(crm.calls(), 1);
        assert_eq!(run1.hits(), 0);

        let run2 = Cached::new(&crm, &mirror, &p);
        let found = ok(run2.execute(find(c, "r1")).await);
        assert_eq!(found[0]["estimatedvalue"], 100.0);
        assert_eq!(crm.calls(), 1, "served from the mirror");
        assert_eq!(run2.hits(), 1);
        let written = ok(run2.execute(update(c, "o1", 150.0)).await);
        assert_eq!(written["estimatedvalue"], 150.0);
        assert_eq!(
            crm.if_match
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last()
                .cloned()
                .flatten()
                .as_deref(),
            Some("W/\"1\""),
            "the write carries the version the run was served"
        );

        // The write's answer is what the next run reads.
        let run3 = Cached::new(&crm, &mirror, &p);
        let found = ok(run3.execute(find(c, "r1")).await);
        assert_eq!(found[0]["estimatedvalue"], 150.0);
        assert_eq!(crm.calls(), 2);
    });
}

#[test]
fn a_write_refused_after_an_edit_behind_the_mirror_is_a_stale_read_and_drops_the_record() {
    let Fixture { p, c, crm, mirror } = fixture();
    block(async {
        let _ = Cached::new(&crm, &mirror, &p).execute(find(c, "r1")).await;
        crm.edit("o1", 120.0);
        let run = Cached::new(&crm, &mirror, &p);
        let _ = run.execute(find(c, "r1")).await;
        let refused = run.execute(update(c, "o1", 150.0)).await;
        let e = err(refused);
        assert!(e.stale, "{e:?}");
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(mirror.get(c, "opportunity", "o1").is_none());

        // The run again: fresh read, plain write.
        let again = Cached::new(&crm, &mirror, &p);
        let found = ok(again.execute(find(c, "r1")).await);
        assert_eq!(found[0]["estimatedvalue"], 120.0);
        assert_eq!(again.hits(), 0);
        assert!(again.execute(update(c, "o1", 150.0)).await.is_ok());
    });
}

#[test]
fn a_refused_write_of_a_record_read_fresh_is_an_ordinary_error() {
    let Fixture { p, c, crm, mirror } = fixture();
    block(async {
        let run = Cached::new(&crm, &mirror, &p);
        let mut request = update(c, "o1", 1.0);
        if let Request::Update { if_match, .. } = &mut request {
            *if_match = Some("W/\"999\"".into());
        }
        let e = err(run.execute(request).await);
        assert!(!e.stale);
        assert_eq!(e.kind, ErrorKind::Conflict);
    });
}

#[test]
fn the_poller_drops_records_whose_version_moved() {
    let Fixture { c, mirror, .. } = fixture();
    mirror.put(
        c,
        "opportunity",
        "o1",
        "W/\"1\"".into(),
        json!({"opportunityid": "o1"}),
    );
    mirror.observe(c, "opportunity", "o1", "W/\"1\"");
    assert!(mirror.get(c, "opportunity", "o1").is_some());
    mirror.observe(c, "opportunity", "o1", "W/\"2\"");
    assert!(mirror.get(c, "opportunity", "o1").is_none());
    assert!(mirror.is_empty());
}

#[test]
fn expired_records_are_not_served_and_a_zero_ttl_holds_nothing() {
    let p = shipped();
    let c = crm_id(&p);
    let expired = Mirror::new(MirrorLimits {
        ttl: Duration::from_nanos(1),
        records: 10,
    });
    expired.put(
        c,
        "opportunity",
        "o1",
        "v".into(),
        json!({"opportunityid": "o1", "x": "a"}),
    );
    assert!(expired.get(c, "opportunity", "o1").is_none());
    assert!(
        expired
            .find(c, "opportunity", &[("x".into(), json!("a"))])
            .is_none()
    );
    let off = Mirror::new(MirrorLimits {
        ttl: Duration::ZERO,
        records: 10,
    });
    off.put(
        c,
        "opportunity",
        "o1",
        "v".into(),
        json!({"opportunityid": "o1"}),
    );
    assert!(off.is_empty());
}

#[test]
fn the_oldest_records_go_first_beyond_the_capacity() {
    let p = shipped();
    let c = crm_id(&p);
    let m = Mirror::new(MirrorLimits {
        ttl: Duration::from_secs(60),
        records: 2,
    });
    for k in ["a", "b", "a", "c"] {
        m.put(c, "opportunity", k, "v".into(), json!({"opportunityid": k}));
    }
    assert_eq!(m.len(), 2);
    assert!(
        m.get(c, "opportunity", "b").is_none(),
        "b is the oldest insertion"
    );
    assert!(m.get(c, "opportunity", "a").is_some());
    assert!(m.get(c, "opportunity", "c").is_some());
}

#[test]
fn the_find_index_follows_changed_and_evicted_records() {
    let p = shipped();
    let c = crm_id(&p);
    let m = Mirror::new(MirrorLimits::default());
    let row = |id: &str, r: &str, n: i64| json!({"opportunityid": id, "ref": r, "n": n});
    m.put(c, "opportunity", "o1", "1".into(), row("o1", "r1", 1));
    m.put(c, "opportunity", "o2", "1".into(), row("o2", "r2", 2));
    let by = |r: &str| {
        m.find(c, "opportunity", &[("ref".into(), json!(r))])
            .map(|f| f.0)
    };
    assert_eq!(by("r1").as_deref(), Some("o1"));
    // o1 now carries r3: the index (built by the find above) follows.
    m.put(c, "opportunity", "o1", "2".into(), row("o1", "r3", 1));
    assert_eq!(by("r1"), None);
    assert_eq!(by("r3").as_deref(), Some("o1"));
    m.evict(c, "opportunity", "o1");
    assert_eq!(by("r3"), None);
    // Every field must match; numbers compare by value.
    let two = [("ref".into(), json!("r2")), ("n".into(), json!(3))];
    assert!(m.find(c, "opportunity", &two).is_none());
    let two = [("ref".into(), json!("r2")), ("n".into(), json!(2))];
    assert_eq!(
        m.find(c, "opportunity", &two).map(|f| f.0).as_deref(),
        Some("o2")
    );
}

#[test]
fn partner_center_requests_pass_through_and_writing_calls_drop_what_the_run_knew() {
    let Fixture { p, c, crm, mirror } = fixture();
    let pc = p.connector_id("partner_center").unwrap_or(ConnectorId(0));
    block(async {
        let run = Cached::new(&crm, &mirror, &p);
        let get = || Request::Get {
            connector: pc,
            entity: "referral".into(),
            key: "o1".into(),
            select: Vec::new(),
        };
        let _ = run.execute(get()).await;
        let _ = run.execute(get()).await;
        assert_eq!(crm.calls(), 2, "Partner Center is never mirrored");
        assert!(mirror.is_empty());

        let _ = run.execute(find(c, "r1")).await;
        assert_eq!(mirror.len(), 1);
        let call = Request::Call {
            connector: c,
            operation: "win_opportunity".into(),
            inputs: json!({}),
        };
        let _ = run.execute(call).await;
        assert!(mirror.is_empty());
    });
}

#[test]
fn a_failed_run_forgets_what_it_read() {
    let Fixture { p, c, crm, mirror } = fixture();
    block(async {
        let run = Cached::new(&crm, &mirror, &p);
        let _ = run.execute(find(c, "r1")).await;
        assert_eq!(mirror.len(), 1);
        run.forget();
        assert!(mirror.is_empty());
    });
}
