//! Prometheus metrics at `GET /metrics` (OpenMetrics text): requests by
//! route kind, method and status, their durations and bytes, maintenance
//! jobs, TLS handshake failures, and the process's memory, CPU and files.
//!
//! Labels are route kinds (`manifest`, `blob`, `upload`, …), never
//! repository names, users or addresses: the series stay a few hundred
//! however many repositories the store holds, and the page tells nothing
//! a scraper should not know.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry};
use warp::Filter;
use warp::reply::Response;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobName {
    job: &'static str,
}

/// Upper bounds of the request duration buckets, in seconds: from a
/// manifest served from the page cache to a multi-GiB blob.
const DURATION_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    received: Family<RouteLabels, Counter>,
    sent: Family<RouteLabels, Counter>,
    incomplete: Family<RouteLabels, Counter>,
    in_flight: Gauge,
    tls_failures: Counter,
    jobs: Family<JobLabels, Counter>,
    job_last_success: Family<JobName, Gauge>,
    gc_blobs_removed: Counter,
    gc_bytes_freed: Counter,
    retention_tags_removed: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Process {
            started: SystemTime::now(),
        }));
        let r = registry.sub_registry_with_prefix("nora");
        r.register(
            "build",
            "The running nora's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let requests = add(
            r,
            "http_requests",
            "Requests answered, by method, route kind and status",
            Family::default(),
        );
        let duration = add(
            r,
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer's body",
            HistogramFamily::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
        );
        let received = add(
            r,
            "http_received_bytes",
            "Request body bytes read",
            Family::default(),
        );
        let sent = add(
            r,
            "http_sent_bytes",
            "Answer body bytes sent",
            Family::default(),
        );
        let incomplete = add(
            r,
            "http_responses_incomplete",
            "Answers whose body was not sent whole (the client went away)",
            Family::default(),
        );
        let in_flight = add(
            r,
            "http_requests_in_flight",
            "Requests being answered now",
            Gauge::default(),
        );
        let tls_failures = add(
            r,
            "tls_handshake_failures",
            "Connections refused before a request: failed or timed-out TLS handshakes, plain HTTP on the HTTPS port",
            Counter::default(),
        );
        let jobs = add(
            r,
            "jobs",
            "gc and retention runs of this server, by result (ok, dry_run, failed)",
            Family::default(),
        );
        let job_last_success = add(
            r,
            "job_last_success_timestamp_seconds",
            "When each job last finished a run that was not a dry run, without error (Unix time)",
            Family::default(),
        );
        let gc_blobs_removed = add(
            r,
            "gc_blobs_removed",
            "Blobs removed by this server's gc runs",
            Counter::default(),
        );
        let gc_bytes_freed = add(
            r,
            "gc_freed_bytes",
            "Bytes freed by this server's gc runs",
            Counter::default(),
        );
        let retention_tags_removed = add(
            r,
            "retention_tags_removed",
            "Tags removed by this server's retention runs",
            Counter::default(),
        );
        Metrics {
            registry,
            requests,
            duration,
            received,
            sent,
            incomplete,
            in_flight,
            tls_failures,
            jobs,
            job_last_success,
            gc_blobs_removed,
            gc_bytes_freed,
            retention_tags_removed,
        }
    }

    /// A request started: it is in flight until `finished`.
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// A request's answer has been sent (`complete`) or given up.
    pub fn finished(&self, done: &Finished) {
        self.in_flight.dec();
        let (method, route) = (method_label(&done.method), route_of(&done.path));
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: done.status,
            })
            .inc();
        let labels = RouteLabels { method, route };
        self.duration
            .get_or_create(&labels)
            .observe(done.elapsed.as_secs_f64());
        if done.received > 0 {
            self.received.get_or_create(&labels).inc_by(done.received);
        }
        if done.sent > 0 {
            self.sent.get_or_create(&labels).inc_by(done.sent);
        }
        if !done.complete {
            self.incomplete.get_or_create(&labels).inc();
        }
    }

    pub fn tls_failure(&self) {
        self.tls_failures.inc();
    }

    /// A gc or retention run ended. Only a run that changed the store
    /// counts as the job's last success: a dry run removes nothing.
    pub fn job(&self, job: &'static str, outcome: JobOutcome) {
        let result = match outcome {
            JobOutcome::Failed => "failed",
            JobOutcome::DryRun => "dry_run",
            JobOutcome::Done { .. } => "ok",
        };
        self.jobs.get_or_create(&JobLabels { job, result }).inc();
        let JobOutcome::Done { removed, freed } = outcome else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.job_last_success
            .get_or_create(&JobName { job })
            .set(i64::try_from(now).unwrap_or(i64::MAX));
        if job == "gc" {
            self.gc_blobs_removed.inc_by(removed);
            self.gc_bytes_freed.inc_by(freed);
        } else {
            self.retention_tags_removed.inc_by(removed);
        }
    }

    /// The page a scraper reads.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; a collector's error would only
        // cut the page short.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "metrics page cut short");
        }
        out
    }
}

/// How a gc or retention run ended: `removed` counts blobs (gc) or tags
/// (retention), `freed` gc's bytes.
pub enum JobOutcome {
    Failed,
    DryRun,
    Done { removed: u64, freed: u64 },
}

impl JobOutcome {
    /// The outcome of a run's `result`; `report` tells of a report whether
    /// it was a dry run, what it removed and what it freed.
    pub fn of<T, E>(result: &Result<T, E>, report: impl Fn(&T) -> (bool, u64, u64)) -> Self {
        match result.as_ref().map(report) {
            Err(_) => JobOutcome::Failed,
            Ok((true, _, _)) => JobOutcome::DryRun,
            Ok((false, removed, freed)) => JobOutcome::Done { removed, freed },
        }
    }
}

/// What the request log knows of a request once its answer is done.
pub struct Finished {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub received: u64,
    pub sent: u64,
    pub elapsed: Duration,
    pub complete: bool,
}

/// Registers `metric` under `name` and gives it back: the registry
/// encodes a clone, which shares its values.
fn add<M: Metric + Clone>(r: &mut Registry, name: &str, help: &str, metric: M) -> M {
    r.register(name, help, metric.clone());
    metric
}

/// `GET /metrics`.
pub fn route(
    served: bool,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path("metrics")
        .and(warp::path::end())
        // Off: no route, so the answer is everyone else's 404.
        .and(warp::any().and_then(move || async move {
            if served {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        }))
        .untuple_one()
        .and(warp::get().or(warp::head()).unify())
        .map(|| {
            let mut r = Response::new(get().render().into());
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            *r.status_mut() = StatusCode::OK;
            r
        })
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The kind of endpoint a path names: a bounded label, whatever the path.
fn route_of(path: &str) -> &'static str {
    let Some(v2) = path.strip_prefix("/v2/") else {
        return match path {
            "/v2" => "base",
            "/health" | "/ready" => "health",
            "/metrics" => "metrics",
            p if p.starts_with("/api/") => "admin",
            p if p.starts_with("/auth/") => "auth",
            _ => "other",
        };
    };
    if v2.is_empty() {
        "base"
    } else if v2 == "_catalog" {
        "catalog"
    } else if v2.ends_with("/tags/list") {
        "tags"
    } else if v2.contains("/blobs/uploads") {
        "upload"
    } else if v2.contains("/manifests/") {
        "manifest"
    } else if v2.contains("/blobs/") {
        "blob"
    } else if v2.contains("/referrers/") {
        "referrers"
    } else {
        "other"
    }
}

/// The standard `process_*` metrics, read from /proc at each scrape.
#[derive(Debug)]
struct Process {
    started: SystemTime,
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let started = self
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64| {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        };
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch",
            started,
        )?;
        if let Some(cpu) = cpu_seconds() {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent",
                None,
                c.metric_type(),
            )?)?;
        }
        if let Some(rss) = resident_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size",
                rss as f64,
            )?;
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors",
                dir.count() as f64,
            )?;
        }
        if let Some(max) = crate::serve::limits::open_files_limit() {
            gauge(
                &mut encoder,
                "process_max_fds",
                "The most file descriptors the process may open",
                max as f64,
            )?;
        }
        Ok(())
    }
}

/// utime + stime from /proc/self/stat.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces: state is the
    // first, utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

/// Resident pages from /proc/self/statm, in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().map(|p| pages * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_a_few_route_kinds() {
        for (path, kind) in [
            ("/v2/", "base"),
            ("/v2", "base"),
            ("/v2/_catalog", "catalog"),
            ("/v2/a/b/tags/list", "tags"),
            ("/v2/a/manifests/v1", "manifest"),
            ("/v2/a/blobs/sha256:ab", "blob"),
            ("/v2/a/blobs/uploads/", "upload"),
            ("/v2/a/blobs/uploads/0123", "upload"),
            ("/v2/a/referrers/sha256:ab", "referrers"),
            ("/v2/blobs/manifests/x", "manifest"),
            ("/api/v1/gc", "admin"),
            ("/auth/token", "auth"),
            ("/health", "health"),
            ("/metrics", "metrics"),
            ("/favicon.ico", "other"),
            ("/v2/a/nothing", "other"),
        ] {
            assert_eq!(route_of(path), kind, "{path}");
        }
    }

    #[test]
    fn the_page_counts_requests_and_the_process() {
        let m = Metrics::new();
        m.started();
        m.finished(&Finished {
            method: Method::GET,
            path: "/v2/a/manifests/v1".into(),
            status: 200,
            received: 0,
            sent: 1234,
            elapsed: Duration::from_millis(3),
            complete: true,
        });
        m.job("gc", JobOutcome::DryRun);
        m.job(
            "gc",
            JobOutcome::Done {
                removed: 2,
                freed: 4096,
            },
        );
        let page = m.render();
        for line in [
            r#"nora_http_requests_total{method="GET",route="manifest",status="200"} 1"#,
            r#"nora_http_sent_bytes_total{method="GET",route="manifest"} 1234"#,
            r#"nora_http_request_duration_seconds_bucket{le="0.005",method="GET",route="manifest"} 1"#,
            r#"nora_http_requests_in_flight 0"#,
            r#"nora_gc_freed_bytes_total 4096"#,
            r#"nora_jobs_total{job="gc",result="ok"} 1"#,
            r#"nora_jobs_total{job="gc",result="dry_run"} 1"#,
            r#"nora_job_last_success_timestamp_seconds{job="gc"} "#,
            r#"nora_build_info{version=""#,
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_open_fds ",
            "# EOF",
        ] {
            assert!(page.contains(line), "{line} not in\n{page}");
        }
    }
}
