//! The results of one operation kind in one phase of `shale bench`, and how they print.

use std::collections::BTreeMap;
use std::time::Duration;

/// Results of one operation kind (`PUT`, `GET`, `DELETE`, `LIST`, `MPU`) in one phase.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub phase: String,
    pub op: String,
    /// Successful operations.
    pub ops: u64,
    /// Payload bytes moved by the successful operations.
    pub bytes: u64,
    /// Wall time of the whole phase (all operation kinds share it).
    pub elapsed: Duration,
    /// Latency of every successful operation, sorted by `finish`.
    pub latencies_us: Vec<u64>,
    /// Failed operations by S3 error code (or `transport` / HTTP status).
    pub errors: BTreeMap<String, u64>,
    /// GETs that returned other bytes than were written (or an object that must not exist).
    pub corrupt: u64,
    /// GETs of keys that do not exist (after a DELETE): answered 404 as they must.
    pub misses: u64,
    /// CPU time of this process during the phase, shared by its operation kinds.
    pub cpu: Option<Duration>,
}

impl Report {
    pub fn new(phase: &str, op: &str) -> Self {
        Report {
            phase: phase.into(),
            op: op.into(),
            ..Report::default()
        }
    }

    pub fn error(&mut self, code: impl Into<String>) {
        *self.errors.entry(code.into()).or_default() += 1;
    }

    pub fn success(&mut self, bytes: u64, latency: Duration) {
        self.ops += 1;
        self.bytes += bytes;
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, other: Report) {
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.corrupt += other.corrupt;
        self.misses += other.misses;
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    pub fn finish(&mut self, elapsed: Duration, cpu: Option<Duration>) {
        self.elapsed = elapsed;
        self.cpu = cpu;
        self.latencies_us.sort_unstable();
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Latency at quantile `p` in microseconds (nearest rank).
    pub fn pct(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i.min(self.latencies_us.len() - 1)]
    }

    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9) / f64::from(1u32 << 20)
    }

    /// Client CPU per operation (all kinds of the phase share the CPU time, so this is
    /// divided by `phase_ops`).
    pub fn cpu_us_per_op(&self, phase_ops: u64) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() * 1e6 / phase_ops.max(1) as f64)
    }

    pub fn json(&self, concurrency: usize, phase_ops: u64) -> String {
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{}:{v}", json_string(k)))
            .collect();
        let cpu = self
            .cpu_us_per_op(phase_ops)
            .map_or("null".to_string(), |c| format!("{c:.1}"));
        format!(
            "{{\"phase\":{},\"op\":{},\"concurrency\":{concurrency},\"ops\":{},\"bytes\":{},\"seconds\":{:.3},\"ops_per_s\":{:.1},\"mib_per_s\":{:.2},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"corrupt\":{},\"misses\":{},\"client_cpu_us_per_op\":{cpu},\"errors\":{{{}}}}}",
            json_string(&self.phase),
            json_string(&self.op),
            self.ops,
            self.bytes,
            self.elapsed.as_secs_f64(),
            self.ops_per_s(),
            self.mib_per_s(),
            ms(self.pct(0.5)),
            ms(self.pct(0.9)),
            ms(self.pct(0.99)),
            ms(self.pct(1.0)),
            self.corrupt,
            self.misses,
            errors.join(",")
        )
    }

    pub fn line(&self, concurrency: usize, phase_ops: u64) -> String {
        let cpu = self
            .cpu_us_per_op(phase_ops)
            .map_or("-".to_string(), |c| format!("{c:.0} us"));
        let mut s = format!(
            "{:<8} {:<6} c={concurrency:<3} ops {:>7}  {:>9.1} op/s  {:>8.2} MiB/s  p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  cpu/op {cpu}",
            self.phase,
            self.op,
            self.ops,
            self.ops_per_s(),
            self.mib_per_s(),
            ms(self.pct(0.5)),
            ms(self.pct(0.9)),
            ms(self.pct(0.99)),
            ms(self.pct(1.0)),
        );
        if self.misses > 0 {
            s.push_str(&format!("  misses {}", self.misses));
        }
        if self.corrupt > 0 {
            s.push_str(&format!("  CORRUPT {}", self.corrupt));
        }
        if !self.errors.is_empty() {
            s.push_str(&format!("  errors {:?}", self.errors));
        }
        s
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`
/// (Linux; `None` elsewhere). Clock ticks are taken as 100 Hz, Linux's `USER_HZ`.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}
