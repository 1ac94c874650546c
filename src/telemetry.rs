//! Logs (JSON lines on stdout, request ids and route templates only) and Prometheus metrics.
use std::fmt::Write;

use metrics::{Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber: JSON lines for machines, plain lines for people (`auto`: plain
/// when stdout is a terminal). Safe to call more than once (later calls do nothing).
pub fn init_logging(filter: &str, format: crate::config::LogFormat) {
    use crate::config::LogFormat;
    use std::io::IsTerminal;
    // `careq serve` refuses a filter that does not parse before it gets here (`Config::check`);
    // the fallback is for code that builds a `Config` itself.
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stdout().is_terminal();
    let text = match format {
        LogFormat::Text => true,
        LogFormat::Json => false,
        LogFormat::Auto => terminal,
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = if text {
        fmt.with_ansi(terminal).try_init()
    } else {
        fmt.json().with_current_span(false).try_init()
    };
}

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Prometheus metrics, kept in the `metrics` crate's recorder (sharded atomics: no lock on the
/// request path) owned by the app rather than installed globally, so apps in one process (the
/// tests) keep their own figures. Gauges that describe state (in-flight requests, sockets,
/// waiting tickets, the writer's queue) are set when `/metrics` is scraped.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("the latency buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        for (name, help) in [
            (
                REQUESTS,
                "HTTP requests by route template, method and status.",
            ),
            (
                DURATION,
                "HTTP request latency in seconds by route template, method and status.",
            ),
            (IN_FLIGHT, "Requests being served now."),
            (SOCKETS, "Open live-board WebSockets."),
            (
                WAITING,
                "Waiting tickets per clinic today (counted up to 10,000 per priority).",
            ),
            (
                WRITE_QUEUE,
                "Units of work waiting for the database writer.",
            ),
            (BUILD_INFO, "careq's version; always 1."),
        ] {
            let key = KeyName::from(name);
            match name {
                REQUESTS => recorder.describe_counter(key, None, help.into()),
                DURATION => recorder.describe_histogram(key, Some(Unit::Seconds), help.into()),
                _ => recorder.describe_gauge(key, None, help.into()),
            }
        }
        let build = Key::from_parts(
            BUILD_INFO,
            vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
        );
        recorder.register_gauge(&build, &METADATA).set(1.0);
        Metrics { recorder, handle }
    }
}

const REQUESTS: &str = "careq_http_requests_total";
const DURATION: &str = "careq_http_request_duration_seconds";
const IN_FLIGHT: &str = "careq_http_requests_in_flight";
const SOCKETS: &str = "careq_websockets_open";
const WAITING: &str = "careq_queue_waiting_tickets";
const WRITE_QUEUE: &str = "careq_storage_write_queue_depth";
const BUILD_INFO: &str = "careq_build_info";

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// State the scrape reports as gauges.
pub struct Gauges {
    pub in_flight: usize,
    pub sockets: usize,
    pub write_queue: usize,
    /// Waiting tickets per clinic id.
    pub waiting: Vec<(String, u64)>,
}

impl Metrics {
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = vec![
            Label::new("route", route.to_string()),
            Label::new("method", method.to_string()),
            Label::new("status", status.to_string()),
        ];
        let requests = Key::from_parts(REQUESTS, labels.clone());
        self.recorder
            .register_counter(&requests, &METADATA)
            .increment(1);
        let duration = Key::from_parts(DURATION, labels);
        self.recorder
            .register_histogram(&duration, &METADATA)
            .record(seconds);
    }

    /// Drops histogram samples already folded into buckets; run now and then.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text exposition: what was recorded, the gauges, and the process's own
    /// figures (memory, CPU, file descriptors, threads, start time).
    pub fn render(&self, gauges: &Gauges) -> String {
        let gauge = |name: &'static str, labels: Vec<Label>, value: f64| {
            let key = Key::from_parts(name, labels);
            self.recorder.register_gauge(&key, &METADATA).set(value);
        };
        gauge(IN_FLIGHT, vec![], gauges.in_flight as f64);
        gauge(SOCKETS, vec![], gauges.sockets as f64);
        gauge(WRITE_QUEUE, vec![], gauges.write_queue as f64);
        for (clinic, n) in &gauges.waiting {
            gauge(
                WAITING,
                vec![Label::new("clinic", clinic.clone())],
                *n as f64,
            );
        }
        let mut out = self.handle.render();
        process_metrics(&mut out);
        out
    }
}

/// `process_*` metrics read from `/proc/self` (Linux); elsewhere nothing is added.
fn process_metrics(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name, which may itself hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Field numbers from proc(5), minus 3 for the pid, comm and state already skipped.
    let ticks = 100.0; // USER_HZ on Linux
    let page = 4096.0;
    let cpu = (num(13 - 2) + num(14 - 2)) / ticks;
    let threads = num(19 - 2);
    let start_ticks = num(21 - 2);
    let virt = num(22 - 2);
    let rss = num(23 - 2) * page;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("btime ")
                        .map(|v| v.trim().parse::<f64>().ok())
                })
                .flatten()
        })
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    for (name, kind, help, value) in [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time in seconds.",
            cpu,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory in bytes.",
            rss,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory in bytes.",
            virt,
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            fds as f64,
        ),
        ("process_threads", "gauge", "OS threads.", threads),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time since the Unix epoch in seconds.",
            boot + start_ticks / ticks,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_gauges() -> Gauges {
        Gauges {
            in_flight: 3,
            sockets: 1,
            write_queue: 0,
            waiting: vec![("cln_1".into(), 7)],
        }
    }

    #[test]
    fn metrics_render_counters_histograms_gauges_and_the_process() {
        let m = Metrics::default();
        m.record("/v1/x/{id}", "GET", 200, 0.002);
        m.record("/v1/x/{id}", "GET", 200, 0.2);
        let text = m.render(&no_gauges());
        assert!(
            text.contains(
                "careq_http_requests_total{route=\"/v1/x/{id}\",method=\"GET\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "careq_http_request_duration_seconds_bucket{route=\"/v1/x/{id}\",method=\"GET\",status=\"200\",le=\"0.0025\"} 1"
        ), "{text}");
        assert!(text.contains(
            "careq_http_request_duration_seconds_count{route=\"/v1/x/{id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("careq_http_requests_in_flight 3"), "{text}");
        assert!(text.contains("careq_queue_waiting_tickets{clinic=\"cln_1\"} 7"));
        assert!(text.contains("careq_build_info{version=\""));
        assert!(text.contains("process_resident_memory_bytes "));
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    }
}
