//! A handful of Prometheus counters, rendered as text at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 6],
    commands_recorded: AtomicU64,
    commands_replayed: AtomicU64,
    commands_rejected: AtomicU64,
}

impl Metrics {
    /// Counts a finished HTTP request by status class (1xx … 5xx).
    pub fn request(&self, status: u16) {
        let class = usize::from(status / 100).min(5);
        self.requests[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn command(&self, recorded: bool, replayed: bool) {
        let counter = match (recorded, replayed) {
            (true, false) => &self.commands_recorded,
            (true, true) => &self.commands_replayed,
            _ => &self.commands_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter, plus `extra` gauges.
    pub fn render(&self, gauges: &[(&str, &str, i64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP nuanxin_http_requests_total HTTP requests answered, by status class.\n",
        );
        out.push_str("# TYPE nuanxin_http_requests_total counter\n");
        for class in 1..=5 {
            let _ = writeln!(
                out,
                "nuanxin_http_requests_total{{status=\"{class}xx\"}} {}",
                self.requests[class].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP nuanxin_commands_total Commands on family cases, by outcome.\n");
        out.push_str("# TYPE nuanxin_commands_total counter\n");
        for (outcome, counter) in [
            ("recorded", &self.commands_recorded),
            ("replayed", &self.commands_replayed),
            ("rejected", &self.commands_rejected),
        ] {
            let _ = writeln!(
                out,
                "nuanxin_commands_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}
