//! Prometheus metrics (DESIGN §4 "Operations"), served at `GET /metrics` in the text exposition
//! format (version 0.0.4).
//!
//! The numbers are this process's own, kept in memory since it started: HTTP requests by
//! method, route and status, their durations, requests in flight, the answers given to pushed
//! operations, open live connections, and the database pool. Several instances are told apart
//! by Prometheus's `instance` label, as usual. One number is read from the database at each
//! scrape: the outbox's rows per delivery status (shared by all instances).
//!
//! **Nothing personal.** A label is a route *template* (`/sync/v1/upload/{sha256}`, never the
//! path a client sent), one of a fixed set of methods, a status code or an outcome name. Ids,
//! query strings, bodies and anything a person wrote never reach a label (DESIGN §7). A request
//! no route matches counts under `route="unmatched"`, so probing random paths cannot grow the
//! set of series either.
//!
//! **Access.** Without `SOP_METRICS_TOKEN` the endpoint is open, like `/health`: the numbers
//! carry no health information. With it, a scraper must send `Authorization: Bearer <token>`.

use crate::config::SecretString;
use crate::db::Db;
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sop_core::sync::v1::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the request-duration histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The process's metrics. Cheap to clone: a shared handle.
#[derive(Clone, Debug, Default)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    http: Mutex<Http>,
    in_flight: AtomicI64,
    /// Pushed operations answered `applied`, `duplicate`, `refused`.
    push_ops: [AtomicU64; 3],
    live_connections: AtomicI64,
    started: Started,
}

/// When the process started counting.
#[derive(Debug)]
struct Started(Instant);

impl Default for Started {
    fn default() -> Self {
        Self(Instant::now())
    }
}

/// Per-route request tallies.
#[derive(Debug, Default)]
struct Http {
    /// (method, route, status) → requests.
    requests: BTreeMap<(&'static str, String, u16), u64>,
    /// (method, route) → durations.
    durations: BTreeMap<(&'static str, String), Histogram>,
}

/// A cumulative histogram over [`BUCKETS`].
#[derive(Debug, Default)]
struct Histogram {
    /// Observations at or under each bucket's bound (not yet cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The method label: one of a fixed set, so a client cannot invent series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Keeps the in-flight gauge up while it lives.
struct InFlight<'a>(&'a AtomicI64);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one open live connection while it lives.
#[derive(Debug)]
pub struct LiveConnection(Metrics);

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.0.live_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Records one answered request.
    fn record(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        let mut http = self.0.http.lock().unwrap_or_else(PoisonError::into_inner);
        *http
            .requests
            .entry((method, route.clone(), status))
            .or_default() += 1;
        http.durations
            .entry((method, route))
            .or_default()
            .observe(seconds);
    }

    /// Counts the answers of a push.
    pub fn pushed<'a>(&self, outcomes: impl IntoIterator<Item = &'a Outcome>) {
        for outcome in outcomes {
            let i = match outcome {
                Outcome::Applied => 0,
                Outcome::Duplicate => 1,
                Outcome::Refused { .. } => 2,
            };
            self.0.push_ops[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A live connection opened; it counts until the guard is dropped.
    pub fn live_connection(&self) -> LiveConnection {
        self.0.live_connections.fetch_add(1, Ordering::Relaxed);
        LiveConnection(self.clone())
    }

    /// The text exposition of every metric, with the database pool's state read now and the
    /// outbox's rows per status as counted just before (`None` when the count failed: the
    /// family is left out rather than the scrape failing).
    pub fn render(&self, db: &Db, outbox: Option<&[(String, i64)]>) -> String {
        let mut o = String::new();
        family(
            &mut o,
            "sop_build_info",
            "gauge",
            "The version of the case rules this server runs.",
        );
        let _ = writeln!(o, "sop_build_info{{version=\"{}\"}} 1", sop_core::VERSION);
        gauge(
            &mut o,
            "sop_uptime_seconds",
            "Seconds since this process started counting.",
            format!("{:.3}", self.0.started.0.elapsed().as_secs_f64()),
        );
        gauge(
            &mut o,
            "sop_http_requests_in_flight",
            "HTTP requests being answered.",
            self.0.in_flight.load(Ordering::Relaxed),
        );
        self.render_http(&mut o);
        family(
            &mut o,
            "sop_sync_push_ops_total",
            "counter",
            "Operations pushed to /sync/v1, by the answer they got.",
        );
        for (i, outcome) in ["applied", "duplicate", "refused"].iter().enumerate() {
            let n = self.0.push_ops[i].load(Ordering::Relaxed);
            let _ = writeln!(o, "sop_sync_push_ops_total{{outcome=\"{outcome}\"}} {n}");
        }
        gauge(
            &mut o,
            "sop_live_connections",
            "Open /sync/v1/live connections.",
            self.0.live_connections.load(Ordering::Relaxed),
        );
        let (size, idle) = db.pool_state();
        family(
            &mut o,
            "sop_db_connections",
            "gauge",
            "Database pool connections, by state.",
        );
        let _ = writeln!(o, "sop_db_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(
            o,
            "sop_db_connections{{state=\"in_use\"}} {}",
            size.saturating_sub(idle)
        );
        if let Some(rows) = outbox {
            family(
                &mut o,
                "sop_outbox_rows",
                "gauge",
                "Outbound calls in the outbox, by delivery status.",
            );
            for (status, n) in rows {
                let _ = writeln!(o, "sop_outbox_rows{{status=\"{}\"}} {n}", escape(status));
            }
        }
        o
    }

    fn render_http(&self, o: &mut String) {
        let http = self.0.http.lock().unwrap_or_else(PoisonError::into_inner);
        family(
            o,
            "sop_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status.",
        );
        for ((method, route, status), n) in &http.requests {
            let _ = writeln!(
                o,
                "sop_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        family(
            o,
            "sop_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests (to the response head), by method and route template.",
        );
        for ((method, route), h) in &http.durations {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    o,
                    "sop_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                o,
                "sop_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "sop_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "sop_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// A gauge without labels: its `# HELP`, `# TYPE` and one sample.
fn gauge(o: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    family(o, name, "gauge", help);
    let _ = writeln!(o, "{name} {value}");
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times and counts every request under its route template.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = {
        let _in_flight = InFlight::enter(&metrics.0.in_flight);
        next.run(req).await
    };
    metrics.record(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`: the text exposition, behind the bearer token if one is configured.
pub async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.metrics_token
        && !authorized(&headers, token)
    {
        return AppError::Unauthorized("the metrics need the configured bearer token".to_owned())
            .into_response();
    }
    let outbox = match state.store.count_outbox().await {
        Ok(rows) => Some(rows),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count the outbox");
            None
        }
    };
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(&state.db, outbox.as_deref()),
    )
        .into_response()
}

/// Whether `headers` carry `Authorization: Bearer <token>` (compared in constant time).
fn authorized(headers: &HeaderMap, token: &SecretString) -> bool {
    let Some(sent) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (sent.as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
