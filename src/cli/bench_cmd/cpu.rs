//! CPU time of the bench's process, split by who spent it: the service (its
//! runtime's threads and the state store's), the state store alone, and the
//! world outside (the sandbox and the webhook client, on their own runtime, and
//! the bench's main thread). Read from `/proc/self/task/*/stat`; all zero where
//! /proc is missing.

/// Name of the outside runtime's threads (a thread's `comm` keeps 15 bytes).
pub(super) const OUTSIDE_THREADS: &str = "cosync-outside";

/// The state store's owner thread ([`crate::store::Store::call`]).
const STORE_THREAD: &str = "cosync-store";

/// CPU seconds (user + system) so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Split {
    /// Every thread of the process.
    pub(super) total: f64,
    /// The state store's owner thread.
    pub(super) store: f64,
    /// The sandbox, the webhook client and the main thread.
    pub(super) outside: f64,
}

impl Split {
    /// The CPU time spent so far.
    pub(super) fn now() -> Split {
        let total = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| stat_cpu_seconds(&s))
            .unwrap_or(0.0);
        let mut split = Split {
            total,
            ..Split::default()
        };
        let pid = std::process::id().to_string();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return split;
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let seconds = stat_cpu_seconds(&stat).unwrap_or(0.0);
            let main = task.file_name().to_str() == Some(pid.as_str());
            match thread_name(&stat) {
                Some(STORE_THREAD) => split.store += seconds,
                Some(OUTSIDE_THREADS) => split.outside += seconds,
                _ if main => split.outside += seconds,
                _ => {}
            }
        }
        split
    }

    /// What was spent between `before` and this reading.
    pub(super) fn since(&self, before: &Split) -> Split {
        Split {
            total: self.total - before.total,
            store: self.store - before.store,
            outside: self.outside - before.outside,
        }
    }

    /// The service's part: everything but the outside (the store included).
    pub(super) fn service(&self) -> f64 {
        (self.total - self.outside).max(0.0)
    }
}

/// The thread's name from a `stat` line: the text in the first parentheses.
fn thread_name(stat: &str) -> Option<&str> {
    let start = stat.find('(')? + 1;
    let end = stat.rfind(')')?;
    stat.get(start..end)
}

/// User + system time from a `/proc/.../stat` line (clock ticks, 100 per second
/// as on Linux).
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_time() {
        let stat = "4242 (cosync-outside) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(thread_name(stat), Some("cosync-outside"));
        assert_eq!(stat_cpu_seconds(stat), Some(3.0));
        let odd = "7 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0";
        assert_eq!(thread_name(odd), Some("a (b) c"));
        assert_eq!(stat_cpu_seconds(odd), Some(0.03));
        assert_eq!(stat_cpu_seconds("garbage"), None);
    }

    #[test]
    fn the_service_is_what_the_outside_did_not_spend() {
        let before = Split {
            total: 1.0,
            store: 0.2,
            outside: 0.5,
        };
        let after = Split {
            total: 4.0,
            store: 0.7,
            outside: 1.5,
        };
        let spent = after.since(&before);
        assert!((spent.store - 0.5).abs() < 1e-9, "{spent:?}");
        assert!((spent.service() - 2.0).abs() < 1e-9, "{spent:?}");
    }

    #[test]
    fn threads_of_the_outside_runtime_are_counted_as_outside() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(OUTSIDE_THREADS)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let before = Split::now();
        runtime.block_on(async {
            tokio::spawn(async {
                // Busy for about 0.3 s of CPU on the runtime's thread.
                let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
                let mut n = 0u64;
                while std::time::Instant::now() < until {
                    n = n.wrapping_add(1);
                }
                std::hint::black_box(n);
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        });
        let spent = Split::now().since(&before);
        // Other tests run in this process meanwhile: only the outside's own
        // threads are certain.
        assert!(spent.outside >= 0.1, "{spent:?}");
    }
}
