//! The client-side request budget of one connection: at most `requests` requests
//! per sliding `window`, and at most `concurrent` requests in flight (Dataverse's
//! service protection limits are 6000 per 5 minutes and 52 concurrent). Staying
//! under them avoids 429s instead of recovering from them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::spec::project::LimitsSpec;

/// Default window when `requests` is set without one.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// A request budget.
#[derive(Debug)]
pub(crate) struct RequestBudget {
    window: Option<(usize, Duration)>,
    sent: Mutex<VecDeque<Instant>>,
    in_flight: Option<Arc<Semaphore>>,
}

/// Held while a request is in flight; releases its concurrency slot on drop.
#[derive(Debug)]
pub(crate) struct BudgetPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl RequestBudget {
    /// A budget from `limits`, or from `defaults` when `limits` is absent.
    pub(crate) fn new(limits: Option<&LimitsSpec>, defaults: &LimitsSpec) -> RequestBudget {
        let limits = limits.unwrap_or(defaults);
        let window = limits.requests.filter(|n| *n > 0).map(|n| {
            let span = limits
                .window
                .as_ref()
                .and_then(|w| w.to_std())
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_WINDOW);
            (n as usize, span)
        });
        let in_flight = limits
            .concurrent
            .filter(|n| *n > 0)
            .map(|n| Arc::new(Semaphore::new(n as usize)));
        RequestBudget {
            window,
            sent: Mutex::new(VecDeque::new()),
            in_flight,
        }
    }

    /// Waits until a request may be sent and takes its slot.
    pub(crate) async fn acquire(&self) -> BudgetPermit {
        let permit = match &self.in_flight {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        if let Some((limit, span)) = self.window {
            loop {
                let wait = {
                    let now = Instant::now();
                    let mut sent = match self.sent.lock() {
                        Ok(s) => s,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    while sent.front().is_some_and(|t| now.duration_since(*t) >= span) {
                        sent.pop_front();
                    }
                    if sent.len() < limit {
                        sent.push_back(now);
                        None
                    } else {
                        sent.front()
                            .map(|t| span.saturating_sub(now.duration_since(*t)))
                    }
                };
                match wait {
                    None => break,
                    Some(d) => {
                        tracing::debug!(
                            wait_ms = d.as_millis() as u64,
                            "request budget exhausted, waiting"
                        );
                        tokio::time::sleep(d.max(Duration::from_millis(1))).await;
                    }
                }
            }
        }
        BudgetPermit { _permit: permit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::common::Duration as SpecDuration;

    #[tokio::test]
    async fn window_delays_the_request_over_the_limit() {
        let limits = LimitsSpec {
            requests: Some(2),
            window: Some(SpecDuration("200ms".into())),
            concurrent: None,
        };
        let budget = RequestBudget::new(Some(&limits), &LimitsSpec::default());
        let start = Instant::now();
        for _ in 0..3 {
            drop(budget.acquire().await);
        }
        assert!(start.elapsed() >= Duration::from_millis(190));
    }
}
