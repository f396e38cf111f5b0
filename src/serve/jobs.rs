//! Maintenance jobs of a running server: gc and retention, on the configured
//! schedule or on an admin API request, one at a time, each run logged and
//! its outcome kept for `GET /api/v1/jobs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::metrics::JobOutcome;
use crate::client::local::Local;
use crate::client::{
    Client, ClientError, ErrorKind, GcRequest, JobProgress, JobStatus, Jobs, Result,
};
use crate::config::Config;
use crate::registry::gc::GcReport;
use crate::registry::retention::RetentionReport;
use crate::schedule::When;

#[derive(Clone, Copy, Debug)]
enum Job {
    Gc,
    Retention,
}

pub struct Scheduler {
    client: Arc<Local>,
    status: Mutex<Jobs>,
    /// Held while a job runs: gc and retention never overlap in one process
    /// (the gc lock in storage also keeps other processes out).
    running: tokio::sync::Mutex<()>,
}

impl Scheduler {
    pub fn new(client: Arc<Local>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            client,
            status: Mutex::new(Jobs::default()),
            running: tokio::sync::Mutex::new(()),
        })
    }

    pub fn client(&self) -> &Local {
        &self.client
    }

    /// Starts the scheduled loops the config asks for. The schedules were
    /// validated when the config was loaded.
    pub fn start(self: &Arc<Self>, config: &Config) {
        for (job, spec) in [
            (Job::Gc, &config.schedule.gc),
            (Job::Retention, &config.schedule.retention),
        ] {
            let Some(spec) = spec.clone() else { continue };
            let when = match When::parse(&spec) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(job = ?job, error = %e, "bad schedule, job disabled");
                    continue;
                }
            };
            self.update(job, |s| s.schedule = Some(spec.clone()));
            let me = self.clone();
            tokio::spawn(async move { me.run_on_schedule(job, when).await });
        }
    }

    pub fn status(&self) -> Jobs {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Returns once no job runs (new ones may start after).
    pub async fn idle(&self) {
        drop(self.running.lock().await);
    }

    /// Runs a gc to its end on a task of its own, even when the caller stops
    /// waiting: a client that gives up (its --timeout, Ctrl-C, a dropped
    /// connection) drops the request's future, and a gc cut off there would
    /// keep its lock until it goes stale and show as running forever.
    pub async fn gc(self: &Arc<Self>, req: &GcRequest) -> Result<GcReport> {
        let (me, req) = (self.clone(), req.clone());
        detached(async move { me.gc_here(&req).await }).await
    }

    /// Retention, detached like `gc`.
    pub async fn retention(self: &Arc<Self>, dry_run: bool) -> Result<RetentionReport> {
        let me = self.clone();
        detached(async move { me.retention_here(dry_run).await }).await
    }

    async fn gc_here(&self, req: &GcRequest) -> Result<GcReport> {
        let _one = self.running.lock().await;
        self.update(Job::Gc, |s| {
            s.running = true;
            s.progress = Some(JobProgress {
                phase: "start".into(),
                ..JobProgress::default()
            });
        });
        // Called for every blob: the phase's name is copied only when it changes.
        let progress = |phase: &str, done: u64, total: u64| {
            self.update(Job::Gc, |s| match &mut s.progress {
                Some(p) if p.phase == phase => (p.done, p.total) = (done, total),
                p => {
                    *p = Some(JobProgress {
                        phase: phase.to_string(),
                        done,
                        total,
                    })
                }
            })
        };
        let result = self.client.gc(req, &progress).await;
        let outcome = JobOutcome::of(&result, |r| (r.dry_run, r.blobs_removed, r.bytes_freed));
        super::metrics::get().job("gc", outcome);
        self.finish(Job::Gc, &result);
        result
    }

    async fn retention_here(&self, dry_run: bool) -> Result<RetentionReport> {
        let _one = self.running.lock().await;
        self.update(Job::Retention, |s| s.running = true);
        let result = self.client.retention(dry_run).await;
        let outcome = JobOutcome::of(&result, |r| (r.dry_run, r.removals.len() as u64, 0));
        super::metrics::get().job("retention", outcome);
        self.finish(Job::Retention, &result);
        result
    }

    async fn run_on_schedule(&self, job: Job, when: When) {
        loop {
            let Some(next) = when.next(SystemTime::now()) else {
                tracing::warn!(job = ?job, "schedule has no next run, job stopped");
                return;
            };
            self.update(job, |s| s.next_run = Some(unix(next)));
            let wait = next
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
            tracing::info!(job = ?job, "scheduled run starting");
            match job {
                Job::Gc => {
                    let req = GcRequest {
                        dry_run: false,
                        grace_seconds: None,
                    };
                    let _ = self.gc_here(&req).await;
                }
                Job::Retention => {
                    let _ = self.retention_here(false).await;
                }
            }
        }
    }

    fn finish<T: serde::Serialize>(&self, job: Job, result: &std::result::Result<T, ClientError>) {
        let outcome = match result {
            Ok(report) => {
                let value = serde_json::to_value(report).unwrap_or_default();
                tracing::info!(job = ?job, report = %summary(&value), "job finished");
                value
            }
            Err(e) => {
                tracing::warn!(job = ?job, error = %e, "job failed");
                serde_json::json!({ "error": e })
            }
        };
        self.update(job, |s| {
            s.running = false;
            s.progress = None;
            s.last_run = Some(unix(SystemTime::now()));
            s.last_result = Some(outcome);
        });
    }

    fn update(&self, job: Job, f: impl FnOnce(&mut JobStatus)) {
        let mut jobs = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(match job {
            Job::Gc => &mut jobs.gc,
            Job::Retention => &mut jobs.retention,
        });
    }
}

async fn detached<T: Send + 'static>(
    job: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(job).await.map_err(|e| {
        ClientError::new(ErrorKind::Failed, format!("the job ended abnormally: {e}"))
    })?
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A report for the log: lists by their length (a retention that removed
/// 1,500 tags made a 258 KB line); `GET /api/v1/jobs` has it whole.
fn summary(report: &serde_json::Value) -> serde_json::Value {
    match report {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::Array(items) => (k.clone(), items.len().into()),
                v => (k.clone(), v.clone()),
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_logged_report_counts_its_lists() {
        let report =
            serde_json::json!({"dry_run": false, "removals": [1, 2, 3], "manifests_removed": 2});
        assert_eq!(
            super::summary(&report),
            serde_json::json!({"dry_run": false, "removals": 3, "manifests_removed": 2})
        );
    }
}
