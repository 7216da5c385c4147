//! Operational metrics of one replica, in Prometheus's text format (`GET /metrics`): counters and
//! latency histograms that the layers record as they work (HTTP requests per route, jobs by kind
//! and outcome, the meter tick, driver failures), and gauges the server reads at scrape time.
//!
//! Kept in memory per replica, from its start, as Prometheus expects: a scraper sums replicas and
//! handles restarts (counters only ever grow while the process lives). Label values come from
//! Hangar's own vocabulary (route templates, job kinds), never from user input, so the number of
//! series stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// A metric's name and its labels, rendered `name{a="x",b="y"}`.
type Series = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Histogram {
    /// Observations at or below each of `BUCKETS` (cumulative when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and histograms of this replica (see the module docs).
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Series, u64>>,
    histograms: Mutex<BTreeMap<Series, Histogram>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn series(name: &'static str, labels: &[(&'static str, &str)]) -> Series {
    (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    )
}

/// What each metric means, for `# HELP` and `# TYPE`.
const DESCRIPTIONS: &[(&str, &str, &str)] = &[
    (
        "hangar_http_requests_total",
        "counter",
        "HTTP requests answered, by method, route template and status class (2xx, 4xx, 5xx…)",
    ),
    (
        "hangar_http_request_duration_seconds",
        "histogram",
        "Time from request to response headers, by API surface (api, marketplace, cloud, admin, other)",
    ),
    (
        "hangar_jobs_total",
        "counter",
        "Jobs run, by kind and outcome (done, retry, failed)",
    ),
    (
        "hangar_job_duration_seconds",
        "histogram",
        "Time one job attempt took, by kind",
    ),
    (
        "hangar_driver_errors_total",
        "counter",
        "Machine jobs whose driver call failed, by job kind",
    ),
    (
        "hangar_meter_tick_duration_seconds",
        "histogram",
        "Time one metering tick took",
    ),
    (
        "hangar_meter_tick_errors_total",
        "counter",
        "Metering ticks that failed (and are caught up by the next)",
    ),
];

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry(series(name, labels)).or_default() += 1;
    }

    /// Records one duration in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
        let mut h = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let h = h.entry(series(name, labels)).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Everything recorded, in Prometheus's text exposition format (0.0.4), followed by
    /// `gauges` (name, help, value) read by the caller at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let described = |out: &mut String, name: &str| {
            if let Some((_, kind, help)) = DESCRIPTIONS.iter().find(|(n, _, _)| *n == name) {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            }
        };
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = "";
        for ((name, labels), value) in counters.iter() {
            if *name != last {
                described(&mut out, name);
                last = name;
            }
            let _ = writeln!(out, "{name}{} {value}", label_text(labels, None));
        }
        drop(counters);
        let histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        last = "";
        for ((name, labels), h) in histograms.iter() {
            if *name != last {
                described(&mut out, name);
                last = name;
            }
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {cumulative}",
                    label_text(labels, Some(&le))
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                label_text(labels, Some("+Inf")),
                h.count
            );
            let _ = writeln!(out, "{name}_sum{} {}", label_text(labels, None), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", label_text(labels, None), h.count);
        }
        // A gauge's name may carry its labels (`hangar_node_up{node="a"}`); its series are
        // given together, under one HELP and TYPE.
        let mut described: Vec<&str> = Vec::new();
        for (series, help, value) in gauges {
            let name = series.split('{').next().unwrap_or(series);
            if !described.contains(&name) {
                described.push(name);
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            }
            let _ = writeln!(out, "{series} {value}");
        }
        out
    }
}

/// `{a="x",b="y"}` (with `le` last for buckets); empty without labels.
fn label_text(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics::default();
        m.inc(
            "hangar_jobs_total",
            &[("kind", "create"), ("outcome", "done")],
        );
        m.inc(
            "hangar_jobs_total",
            &[("kind", "create"), ("outcome", "done")],
        );
        m.observe("hangar_job_duration_seconds", &[("kind", "create")], 0.003);
        m.observe("hangar_job_duration_seconds", &[("kind", "create")], 0.2);
        let text = m.render(&[("hangar_consoles_open", "Consoles open", 2.0)]);
        assert!(text.contains("# TYPE hangar_jobs_total counter"));
        assert!(text.contains("hangar_jobs_total{kind=\"create\",outcome=\"done\"} 2"));
        assert!(text.contains("hangar_job_duration_seconds_bucket{kind=\"create\",le=\"0.005\"} 1"));
        assert!(text.contains("hangar_job_duration_seconds_bucket{kind=\"create\",le=\"0.25\"} 2"));
        assert!(text.contains("hangar_job_duration_seconds_bucket{kind=\"create\",le=\"+Inf\"} 2"));
        assert!(text.contains("hangar_job_duration_seconds_count{kind=\"create\"} 2"));
        assert!(text.contains("hangar_consoles_open 2"));
    }
}
