//! Executing one step: budget and timeout, the kind's behaviour, and its record.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::{Exec, Fail, Frame, Halt};
use crate::compile::{CompiledStep, StepKind};
use crate::expr::value::{CompiledText, CompiledValue, to_json};
use crate::mapping::coerce::scalar_text;
use crate::mapping::{Merge, changes_object};
use crate::runtime::connectors::Request;
use crate::runtime::observer::{StepError, StepRecord};
use crate::spec::flow::StepStatus;

/// What a step produced.
pub(super) struct Done {
    pub output: Value,
    pub inputs: Value,
    pub detail: Option<Value>,
    pub status: StepStatus,
    pub error: Option<StepError>,
}

impl Done {
    fn ok(output: Value, inputs: Value) -> Done {
        Done {
            output,
            inputs,
            detail: None,
            status: StepStatus::Succeeded,
            error: None,
        }
    }
}

pub(super) fn eval(t: &CompiledText, frame: &mut Frame, what: &str) -> Result<Value, StepError> {
    if let Some(v) = t.eval_json_in(|name| frame.get(name).map(|v| &**v)) {
        return Ok(v);
    }
    t.eval(&frame.ctx())
        .map_err(|e| StepError::new("template", format!("{what}: {e}")))
}

/// Like [`eval`], sharing the value when `t` is just a variable (`from: referral`).
pub(super) fn eval_shared(
    t: &CompiledText,
    frame: &mut Frame,
    what: &str,
) -> Result<Arc<Value>, StepError> {
    if let Some(v) = shared_variable(t, frame) {
        return Ok(v);
    }
    eval(t, frame, what).map(Arc::new)
}

/// The value of `t` when it is just a variable (`{{ referral }}`), shared.
fn shared_variable(t: &CompiledText, frame: &Frame) -> Option<Arc<Value>> {
    t.variable().and_then(|name| frame.get(name)).cloned()
}

/// Like [`eval_values`], each value that is just a variable shared with it
/// instead of copied.
pub(super) fn eval_values_shared<'v>(
    values: &'v [(String, CompiledValue)],
    frame: &mut Frame,
    what: &str,
) -> Result<Vec<(&'v String, Arc<Value>)>, StepError> {
    let ctx = frame.ctx();
    let var = |name: &str| frame.get(name).map(|v| &**v);
    values
        .iter()
        .map(|(k, v)| {
            let shared = match v {
                CompiledValue::Text(t) => shared_variable(t, frame),
                _ => None,
            };
            let value = match shared {
                Some(value) => value,
                None => Arc::new(
                    v.eval_in(&ctx, &var)
                        .map_err(|e| StepError::new("template", format!("{what} `{k}`: {e}")))?,
                ),
            };
            Ok((k, value))
        })
        .collect()
}

pub(super) fn eval_values(
    values: &[(String, CompiledValue)],
    frame: &mut Frame,
    what: &str,
) -> Result<serde_json::Map<String, Value>, StepError> {
    let ctx = frame.ctx();
    let var = |name: &str| frame.get(name).map(|v| &**v);
    values
        .iter()
        .map(|(k, v)| {
            v.eval_in(&ctx, &var)
                .map(|x| (k.clone(), x))
                .map_err(|e| StepError::new("template", format!("{what} `{k}`: {e}")))
        })
        .collect()
}

pub(super) fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => scalar_text(other),
    }
}

impl Exec<'_> {
    pub(super) fn skip(&self, step: &CompiledStep, frame: &Frame) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.observe(|o| {
            o.step(self.record(
                step,
                frame,
                seq,
                StepStatus::Skipped,
                Value::Null,
                Arc::default(),
                None,
                None,
                0,
            ))
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        step: &CompiledStep,
        frame: &Frame,
        seq: usize,
        status: StepStatus,
        inputs: Value,
        output: Arc<Value>,
        detail: Option<Value>,
        error: Option<StepError>,
        ms: u64,
    ) -> StepRecord {
        StepRecord {
            seq,
            index: step.id.0,
            id: step.output.clone(),
            name: step.name.clone(),
            kind: step.kind.name().to_string(),
            depth: frame.depth,
            iteration: frame.iteration,
            status,
            inputs,
            output,
            detail,
            error,
            duration_ms: ms,
        }
    }

    pub(super) fn run_step<'s>(
        &'s self,
        step: &'s CompiledStep,
        frame: &'s mut Frame,
    ) -> super::BoxFuture<'s, Result<StepStatus, Halt>> {
        Box::pin(async move {
            self.count(&self.steps, self.budget.max_steps, "steps")?;
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let result = match step.timeout {
                Some(limit) => match tokio::time::timeout(limit, self.perform(step, frame)).await {
                    Ok(r) => r,
                    Err(_) => Ok(Done {
                        output: Value::Null,
                        inputs: Value::Null,
                        detail: None,
                        status: StepStatus::TimedOut,
                        error: Some(StepError::new(
                            "timeout",
                            format!("the step took longer than {} ms", limit.as_millis()),
                        )),
                    }),
                },
                None => self.perform(step, frame).await,
            };
            let ms = started.elapsed().as_millis() as u64;
            let done = match result {
                Ok(done) => done,
                Err(Fail::Step(e)) => Done {
                    output: Value::Null,
                    inputs: Value::Null,
                    detail: None,
                    status: StepStatus::Failed,
                    error: Some(e),
                },
                Err(Fail::Halt(h)) => {
                    let (status, error) = match &h {
                        Halt::Terminate { status, message } => {
                            let st = if *status == crate::spec::flow::RunStatus::Failed {
                                StepStatus::Failed
                            } else {
                                StepStatus::Succeeded
                            };
                            (
                                st,
                                message
                                    .clone()
                                    .map(|m| StepError::new("terminated", m))
                                    .filter(|_| st == StepStatus::Failed),
                            )
                        }
                        Halt::Fatal(e) => (StepStatus::Failed, Some(e.clone())),
                    };
                    self.observe(|o| {
                        o.step(self.record(
                            step,
                            frame,
                            seq,
                            status,
                            Value::Null,
                            Arc::default(),
                            None,
                            error,
                            ms,
                        ))
                    });
                    return Err(h);
                }
            };
            if let Some(e) = &done.error
                && let Ok(mut last) = self.last_error.lock()
            {
                *last = Some(e.clone());
            }
            let output = Arc::new(done.output);
            if let Some(name) = &step.output {
                match (done.status, &done.error) {
                    (StepStatus::Succeeded, _) => self.publish_shared(frame, name, output.clone()),
                    // A handler after a failed step reads why: `{{ sync.error.message }}`.
                    (StepStatus::Failed | StepStatus::TimedOut, Some(e)) => {
                        let status = if done.status == StepStatus::Failed {
                            "failed"
                        } else {
                            "timed_out"
                        };
                        self.publish(frame, name, json!({"status": status, "error": {"code": e.code, "message": e.message}}));
                    }
                    _ => {}
                }
            }
            let record = self.record(
                step,
                frame,
                seq,
                done.status,
                done.inputs,
                output,
                done.detail,
                done.error,
                ms,
            );
            self.observe(|o| o.step(record));
            Ok(done.status)
        })
    }

    async fn perform(&self, step: &CompiledStep, frame: &mut Frame) -> Result<Done, Fail> {
        let name = step.output.as_deref().unwrap_or(&step.name);
        match &step.kind {
            StepKind::Get {
                connector,
                entity,
                key,
                select,
                optional,
            } => {
                let key = key_text(&eval(key, frame, "key")?);
                let inputs = json!({"key": key});
                let request = Request::Get {
                    connector: *connector,
                    entity: entity.clone(),
                    key,
                    select: select.clone(),
                };
                match self.request(name, request).await {
                    Ok(record) => Ok(Done::ok(record, inputs)),
                    Err(Fail::Step(e)) if *optional && e.code == "not-found" => {
                        Ok(Done::ok(Value::Null, inputs))
                    }
                    Err(e) => Err(e),
                }
            }
            StepKind::Find {
                connector,
                entity,
                where_fields,
                select,
                all,
                limit,
            } => {
                let fields = eval_values(where_fields, frame, "where")?;
                let inputs = json!({"where": fields});
                let request = Request::Find {
                    connector: *connector,
                    entity: entity.clone(),
                    where_fields: fields.into_iter().collect(),
                    select: select.clone(),
                    limit: if *all { *limit } else { Some(1) },
                };
                let found = self.request(name, request).await?;
                let output = match found {
                    found if *all => found,
                    Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                Ok(Done::ok(output, inputs))
            }
            StepKind::Create {
                connector,
                entity,
                projection,
                values,
            } => {
                let record = self
                    .record_to_write(name, projection.as_ref(), values, frame)
                    .await?;
                let inputs = json!({"record": record});
                let out = self
                    .write(
                        name,
                        Request::Create {
                            connector: *connector,
                            entity: entity.clone(),
                            record,
                        },
                    )
                    .await?;
                Ok(Done::ok(out, inputs))
            }
            StepKind::Update {
                connector,
                entity,
                key,
                changes,
                projection,
                values,
                if_match,
            } => {
                let key = key_text(&eval(key, frame, "key")?);
                let mut fields = match changes {
                    Some(c) => match eval(c, frame, "changes")? {
                        Value::Object(m) => m,
                        Value::Null => serde_json::Map::new(),
                        other => {
                            return Err(StepError::new(
                                "type",
                                format!("`changes` must be a mapping of fields, found {other}"),
                            )
                            .into());
                        }
                    },
                    None => serde_json::Map::new(),
                };
                if projection.is_some()
                    && let Value::Object(m) = self
                        .record_to_write(name, projection.as_ref(), &[], frame)
                        .await?
                {
                    fields.extend(m);
                }
                fields.extend(eval_values(values, frame, "values")?);
                let if_match = if_match
                    .as_ref()
                    .map(|t| eval(t, frame, "if_match").map(|v| key_text(&v)))
                    .transpose()?;
                let inputs = json!({"key": key, "changes": fields});
                if fields.is_empty() {
                    // Nothing to write: no request at all.
                    return Ok(Done {
                        detail: Some(json!({"skipped_write": "no changes"})),
                        ..Done::ok(Value::Null, inputs)
                    });
                }
                let request = Request::Update {
                    connector: *connector,
                    entity: entity.clone(),
                    key,
                    changes: Value::Object(fields),
                    if_match,
                };
                let out = self.write(name, request).await?;
                Ok(Done::ok(out, inputs))
            }
            StepKind::Upsert {
                connector,
                entity,
                match_fields,
                projection,
                values,
            } => {
                let matches = eval_values(match_fields, frame, "match")?;
                let record = self
                    .record_to_write(name, projection.as_ref(), values, frame)
                    .await?;
                let inputs = json!({"match": matches, "record": record});
                let request = Request::Upsert {
                    connector: *connector,
                    entity: entity.clone(),
                    match_fields: matches.into_iter().collect(),
                    record,
                };
                let out = self.write(name, request).await?;
                Ok(Done::ok(out, inputs))
            }
            StepKind::Call {
                connector,
                operation,
                inputs,
            } => {
                let with = Value::Object(eval_values(inputs, frame, "with")?);
                let request = Request::Call {
                    connector: *connector,
                    operation: operation.clone(),
                    inputs: with.clone(),
                };
                let out = if self.connectors.writes(*connector, operation) {
                    self.write(name, request).await?
                } else {
                    self.request(name, request).await?
                };
                Ok(Done::ok(out, json!({"operation": operation, "with": with})))
            }
            StepKind::Map(projection) => {
                let (projected, _) = self.project(name, projection, frame, false).await?;
                Ok(Done::ok(
                    projected.to_record(),
                    json!({"mapping": self.project.mappings[projection.mapping.0].name, "target": projection.target.as_str()}),
                ))
            }
            StepKind::Diff {
                projection,
                to,
                base,
            } => self.diff(name, projection, to, base.as_ref(), frame).await,
            StepKind::Scope(steps) => {
                let mut inner = frame.clone();
                inner.depth += 1;
                let status = self
                    .run_steps(steps, &mut inner)
                    .await
                    .map_err(Fail::Halt)?;
                // What a scope defines stays visible after it.
                inner.depth = frame.depth;
                *frame = inner;
                Ok(Done {
                    status,
                    error: self.status_error(status),
                    ..Done::ok(Value::Null, Value::Null)
                })
            }
            StepKind::If {
                condition,
                then,
                otherwise,
            } => {
                let value = condition
                    .truthy(&frame.ctx())
                    .map_err(|e| StepError::new("template", format!("condition: {e}")))?;
                let branch = if value { then } else { otherwise };
                let status = self.child_block(branch, frame).await?;
                let output = json!({"branch": if value { "then" } else { "else" }});
                Ok(Done {
                    status,
                    error: self.status_error(status),
                    ..Done::ok(output, json!({"condition": value}))
                })
            }
            StepKind::Switch {
                value,
                cases,
                default,
            } => {
                let v = eval(value, frame, "switch")?;
                let key = key_text(&v);
                let (case, steps) = cases
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(("default", default), |(k, s)| (k.as_str(), s));
                let status = self.child_block(steps, frame).await?;
                Ok(Done {
                    status,
                    error: self.status_error(status),
                    ..Done::ok(json!({"case": case}), json!({"value": v}))
                })
            }
            StepKind::Foreach {
                items,
                var,
                concurrency,
                collect,
                steps,
            } => {
                self.foreach(items, var, *concurrency, collect.as_ref(), steps, frame)
                    .await
            }
            StepKind::Until {
                condition,
                limit,
                steps,
            } => {
                let mut rounds = 0u32;
                let mut inner = frame.clone();
                inner.depth += 1;
                loop {
                    self.count(
                        &self.iterations,
                        self.budget.max_iterations,
                        "loop iterations",
                    )
                    .map_err(Fail::Halt)?;
                    inner.iteration = Some(rounds as usize);
                    let status = self
                        .run_steps(steps, &mut inner)
                        .await
                        .map_err(Fail::Halt)?;
                    rounds += 1;
                    if matches!(status, StepStatus::Failed | StepStatus::TimedOut) {
                        merge_back(frame, &inner);
                        return Ok(Done {
                            status,
                            error: self.status_error(status),
                            ..Done::ok(json!({"rounds": rounds}), Value::Null)
                        });
                    }
                    let met = condition
                        .truthy(&inner.ctx())
                        .map_err(|e| StepError::new("template", format!("until: {e}")))?;
                    if met || rounds >= *limit {
                        merge_back(frame, &inner);
                        return Ok(Done::ok(
                            json!({"rounds": rounds, "condition_met": met}),
                            json!({"limit": limit}),
                        ));
                    }
                }
            }
            StepKind::Set(values) => {
                // Evaluated first, all of them, then published: a value reads the
                // variables as they were before the step. A value that is just a
                // variable (`opportunity: "{{ by_identifier }}"`) is shared, not
                // copied; the step record holds one copy.
                let evaluated = eval_values_shared(values, frame, "set")?;
                let record = evaluated
                    .iter()
                    .map(|(k, v)| ((*k).clone(), (**v).clone()))
                    .collect();
                for (k, v) in evaluated {
                    self.publish_shared(frame, k, v);
                }
                Ok(Done::ok(Value::Object(record), Value::Null))
            }
            StepKind::Terminate { status, message } => {
                let message = message
                    .as_ref()
                    .map(|m| eval(m, frame, "message").map(|v| key_text(&v)))
                    .transpose()?;
                Err(Fail::Halt(Halt::Terminate {
                    status: *status,
                    message,
                }))
            }
        }
    }

    /// The error of a block that ended `status`: the failing step's own error.
    fn status_error(&self, status: StepStatus) -> Option<StepError> {
        let last = || self.last_error.lock().ok().and_then(|e| e.clone());
        match status {
            StepStatus::Failed => {
                Some(last().unwrap_or_else(|| StepError::new("failed", "a step inside failed")))
            }
            StepStatus::TimedOut => {
                Some(last().unwrap_or_else(|| StepError::new("timeout", "a step inside timed out")))
            }
            _ => None,
        }
    }

    async fn child_block(
        &self,
        steps: &[CompiledStep],
        frame: &mut Frame,
    ) -> Result<StepStatus, Fail> {
        let mut inner = frame.clone();
        inner.depth += 1;
        let status = self
            .run_steps(steps, &mut inner)
            .await
            .map_err(Fail::Halt)?;
        merge_back(frame, &inner);
        Ok(status)
    }

    #[allow(clippy::too_many_arguments)]
    async fn foreach(
        &self,
        items: &CompiledText,
        var: &str,
        concurrency: usize,
        collect: Option<&CompiledText>,
        steps: &[CompiledStep],
        frame: &mut Frame,
    ) -> Result<Done, Fail> {
        let list = match eval(items, frame, "foreach")? {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            other => {
                return Err(StepError::new(
                    "type",
                    format!("`foreach` needs a list, found {other}"),
                )
                .into());
            }
        };
        for _ in 0..list.len() {
            self.count(
                &self.iterations,
                self.budget.max_iterations,
                "loop iterations",
            )
            .map_err(Fail::Halt)?;
        }
        let count = list.len();
        let mut results = Vec::with_capacity(count);
        if concurrency <= 1 {
            // Sequential: variables set by one item are seen by the next, and by the
            // steps after the loop (Power Automate semantics).
            let mut inner = frame.clone();
            inner.depth += 1;
            for (i, item) in list.into_iter().enumerate() {
                results.push(
                    self.iteration(i, item, var, collect, steps, &mut inner)
                        .await,
                );
            }
            merge_back(frame, &inner);
        } else {
            // Concurrent: each item runs on its own copy; results keep input order.
            let base = frame.clone();
            results = stream::iter(list.into_iter().enumerate())
                .map(|(i, item)| {
                    let mut inner = base.clone();
                    inner.depth += 1;
                    async move {
                        self.iteration(i, item, var, collect, steps, &mut inner)
                            .await
                    }
                })
                .buffered(concurrency)
                .collect()
                .await;
        }
        let mut outputs = Vec::with_capacity(count);
        let mut status = StepStatus::Succeeded;
        for r in results {
            let (s, v) = r?;
            if matches!(s, StepStatus::Failed | StepStatus::TimedOut) {
                status = s;
            }
            outputs.push(v);
        }
        Ok(Done {
            status,
            error: self.status_error(status),
            ..Done::ok(
                Value::Array(outputs),
                json!({"items": count, "concurrency": concurrency}),
            )
        })
    }

    /// One item of a `foreach`: runs the body and returns what it collects.
    #[allow(clippy::too_many_arguments)]
    async fn iteration(
        &self,
        index: usize,
        item: Value,
        var: &str,
        collect: Option<&CompiledText>,
        steps: &[CompiledStep],
        inner: &mut Frame,
    ) -> Result<(StepStatus, Value), Fail> {
        inner.iteration = Some(index);
        inner.set(var, item);
        let before = inner.scope.clone();
        let status = self.run_steps(steps, inner).await.map_err(Fail::Halt)?;
        let collected = match collect {
            Some(c) => {
                let v = c
                    .eval_raw(&inner.ctx())
                    .map_err(|e| StepError::new("template", format!("collect: {e}")))?;
                to_json(&v).map_err(|e| StepError::new("type", e.0))?
            }
            // By default: what the body produced in this iteration.
            None => Value::Object(
                inner
                    .outputs()
                    .filter(|(k, v)| {
                        *k == var
                            || !before
                                .get_json(k)
                                .is_some_and(|b| Arc::ptr_eq(b, v) || **b == ***v)
                    })
                    .map(|(k, v)| (k.to_string(), (**v).clone()))
                    .collect(),
            ),
        };
        Ok((status, collected))
    }

    async fn diff(
        &self,
        name: &str,
        projection: &crate::compile::flow::Projection,
        to: &CompiledText,
        base: Option<&CompiledText>,
        frame: &mut Frame,
    ) -> Result<Done, Fail> {
        let current = eval_shared(to, frame, "to")?;
        if current.is_null() {
            return Err(StepError::new(
                "type",
                "`to` is empty: there is no record to compare with",
            )
            .into());
        }
        let projector = self.project.projector(projection.mapping);
        let base_value = match base {
            Some(b) => eval(b, frame, "base")?,
            None => self
                .bases
                .get(&projector.mapping.name)
                .and_then(|b| serde_json::to_value(b).ok())
                .unwrap_or(Value::Null),
        };
        let (projected, source) = self.project(name, projection, frame, false).await?;
        let inputs =
            json!({"mapping": projector.mapping.name, "target": projection.target.as_str()});
        match Some(base_value).filter(|b| !b.is_null()) {
            None => {
                let changes = projector.diff(&projected, &current);
                self.report_pair(
                    &projector,
                    projection.target,
                    &source,
                    &current,
                    &changes,
                    &[],
                    None,
                    &[],
                );
                let detail = serde_json::to_value(&changes).unwrap_or_default();
                Ok(Done {
                    detail: Some(json!({"changes": detail})),
                    ..Done::ok(changes_object(&changes), inputs)
                })
            }
            Some(base) => {
                let base: crate::mapping::Base = serde_json::from_value(base).map_err(|e| {
                    StepError::new("type", format!("`base` is not a sync base: {e}"))
                })?;
                let (pc, crm) = match projection.target {
                    crate::spec::common::Side::Crm => (&source, &current),
                    crate::spec::common::Side::PartnerCenter => (&current, &source),
                };
                let lookups = self.lookups_for(name, projection, &source, false).await?;
                let newer = self.newer_side(&projector, pc, crm);
                let merge: Merge = crate::mapping::merge_toward(
                    &projector,
                    pc,
                    crm,
                    Some(&base),
                    &lookups,
                    newer,
                    projection.target,
                )
                .map_err(|e| StepError::new("mapping", e.to_string()))?;
                let changes = match projection.target {
                    crate::spec::common::Side::Crm => &merge.to_crm,
                    crate::spec::common::Side::PartnerCenter => &merge.to_partner_center,
                };
                let pending: Vec<&str> = merge.pending.iter().map(String::as_str).collect();
                self.report_pair(
                    &projector,
                    projection.target,
                    &source,
                    &current,
                    changes,
                    &pending,
                    Some(&base),
                    &merge.conflicts,
                );
                let detail = serde_json::to_value(&merge).unwrap_or_default();
                Ok(Done {
                    detail: Some(detail),
                    ..Done::ok(changes_object(changes), inputs)
                })
            }
        }
    }
}

impl Exec<'_> {
    /// The side modified last (policy `newest`): the referral's `updatedDateTime`
    /// against the CRM entity's `modified_field`.
    fn newer_side(
        &self,
        projector: &crate::mapping::Projector<'_>,
        pc: &Value,
        crm: &Value,
    ) -> Option<crate::spec::common::Side> {
        let crm_side = &projector.mapping.crm;
        let field = self
            .project
            .connector(crm_side.connector)
            .spec
            .entities
            .get(&crm_side.entity)
            .and_then(|e| e.modified_field.clone())?;
        let time = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .and_then(crate::domain::parse_time)
        };
        let pc_time = time(pc.get("updatedDateTime"))?;
        let crm_time = time(crm.get(&field))?;
        Some(if crm_time > pc_time {
            crate::spec::common::Side::Crm
        } else {
            crate::spec::common::Side::PartnerCenter
        })
    }

    /// Reports the pair a `diff` compared, with the base to keep once `applied`
    /// is written to the target (rows still `pending` the other way, and
    /// conflicts, keep their old base). Dry runs report nothing.
    #[allow(clippy::too_many_arguments)]
    fn report_pair(
        &self,
        projector: &crate::mapping::Projector<'_>,
        target: crate::spec::common::Side,
        source: &Value,
        current: &Value,
        applied: &[crate::mapping::Change],
        pending: &[&str],
        old: Option<&crate::mapping::Base>,
        conflicts: &[crate::mapping::Conflict],
    ) {
        if self.dry_run {
            return;
        }
        let mut written = current.clone();
        for c in applied {
            super::effects::write_field(&mut written, &c.key, c.new.clone());
        }
        let (pc, crm) = match target {
            crate::spec::common::Side::Crm => (source, &written),
            crate::spec::common::Side::PartnerCenter => (&written, source),
        };
        let mut base = crate::mapping::snapshot(projector, pc, crm);
        let keep = pending
            .iter()
            .copied()
            .chain(conflicts.iter().map(|c| c.label.as_str()));
        for label in keep {
            match old.and_then(|o| o.get(label)) {
                Some(row) => {
                    base.insert(label.to_string(), row.clone());
                }
                None => {
                    base.remove(label);
                }
            }
        }
        let crm_side = &projector.mapping.crm;
        let key = self
            .project
            .connector(crm_side.connector)
            .key_field(&crm_side.entity);
        let text = |v: Option<&Value>| {
            v.and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let pair = super::SyncedPair {
            mapping: projector.mapping.name.clone(),
            referral_id: text(pc.get("id")),
            crm_id: text(crm.get(&key)),
            base,
            conflicts: conflicts.to_vec(),
        };
        self.observe(|o| o.synced(pair));
    }
}

/// Variables set inside a block update the enclosing ones (Power Automate
/// variables are flow-wide); step outputs first defined inside stay inside.
fn merge_back(frame: &mut Frame, inner: &Frame) {
    for (k, v) in inner.outputs() {
        let changed = frame
            .get(k)
            .is_some_and(|old| !Arc::ptr_eq(old, v) && **old != **v);
        if changed {
            frame.set_shared(k, v.clone());
        }
    }
}
