//! Small shared pieces: child servers, `/proc` readers, latency summaries, Markdown tables.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The error type of the harness: a message for the operator.
pub type Result<T, E = String> = std::result::Result<T, E>;

/// How long a child server may take to say it is listening.
const START_BOUND: Duration = Duration::from_secs(30);

/// The repository root (this crate lives in `crates/lunas-bench`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// A server running as a child process (the gateway or the baseline), killed on drop.
pub struct ChildServer {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// Copies the rest of the child's stderr to its log file, so a chatty log never blocks it.
    log: Option<JoinHandle<()>>,
}

impl ChildServer {
    /// Spawns `cmd` (stderr piped, everything else detached) and waits for its
    /// `listening on http://ADDR` line; the rest of stderr goes to `log_path`.
    pub async fn spawn(mut cmd: Command, log_path: &Path) -> Result<ChildServer> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let pid = child.id().ok_or("the child exited at once")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut early = Vec::new();
        let found = tokio::time::timeout(START_BOUND, async {
            while let Ok(Some(line)) = lines.next_line().await {
                let addr = listening_addr(&line);
                early.push(line);
                if addr.is_some() {
                    return addr;
                }
            }
            None
        })
        .await;
        let addr = match found {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                let _ = child.start_kill();
                return Err(format!(
                    "the server exited before listening; its stderr:\n{}",
                    early.join("\n")
                ));
            }
            Err(_) => {
                let _ = child.start_kill();
                return Err(format!(
                    "the server did not listen within {START_BOUND:?}; its stderr:\n{}",
                    early.join("\n")
                ));
            }
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .await
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let head = early.join("\n") + "\n";
        let _ = file.write_all(head.as_bytes()).await;
        let mut rest = lines.into_inner();
        let log = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut rest, &mut file).await;
        });
        Ok(ChildServer {
            child,
            addr,
            pid,
            log: Some(log),
        })
    }

    /// Peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmHWM")
    }

    /// `kill -9`, then reaps the process. Returns once it is gone.
    pub async fn kill9(mut self) -> Result<()> {
        self.child
            .start_kill()
            .map_err(|e| format!("kill -9 {}: {e}", self.pid))?;
        self.child
            .wait()
            .await
            .map_err(|e| format!("wait {}: {e}", self.pid))?;
        if let Some(log) = self.log.take() {
            let _ = log.await;
        }
        Ok(())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The address in a log line like `... listening on http://127.0.0.1:41234`.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let at = line.find("listening on http://")? + "listening on http://".len();
    let addr: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.parse().ok()
}

/// A `kB` field of `/proc/<pid>/status` (e.g. `VmHWM`).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&text, field)
}

/// A field of `/proc/<pid>/io` (e.g. `write_bytes`: what the process caused to be written to
/// storage), in bytes.
pub fn proc_io_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    status_field_kib(&text, field)
}

pub fn status_field_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The size of a SQLite database as its last commit left it, in bytes: what
/// `PRAGMA page_count * page_size` says, read from the files without opening the database (so
/// without a SQL dependency and without disturbing the server that writes it). The page count is
/// that of the last commit in the write-ahead log (`<db>-wal`) whose frames carry the log's
/// current salt, or else the one in the database header.
pub fn sqlite_bytes(db: &Path) -> Result<u64> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let main = read(db)?;
    let wal_path = PathBuf::from(format!("{}-wal", db.display()));
    let wal = if wal_path.exists() {
        read(&wal_path)?
    } else {
        Vec::new()
    };
    sqlite_size(&main, &wal).ok_or_else(|| format!("{}: not a SQLite database", db.display()))
}

fn be32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_be_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

/// [`sqlite_bytes`] of a database file's and its log's contents.
pub fn sqlite_size(main: &[u8], wal: &[u8]) -> Option<u64> {
    if !main.starts_with(b"SQLite format 3\0") {
        return None;
    }
    let page_size = match u16::from_be_bytes(main.get(16..18)?.try_into().ok()?) {
        1 => 65536,
        n => u64::from(n),
    };
    // The header's page count is valid when its change counter matches "version valid for".
    let mut pages = if be32(main, 24)? == be32(main, 92)? {
        be32(main, 28)?
    } else {
        main.len() as u64 / page_size.max(1)
    };
    if wal.len() >= 32 && matches!(be32(wal, 0)?, 0x377f_0682 | 0x377f_0683) {
        let frame = 24 + be32(wal, 8)? as usize;
        let salt = wal.get(16..24)?;
        let mut at = 32;
        while at + frame <= wal.len() {
            // Frames left from before the log was restarted carry an older salt.
            if &wal[at + 8..at + 16] != salt {
                break;
            }
            let commit = be32(wal, at + 4)?;
            if commit != 0 {
                pages = commit;
            }
            at += frame;
        }
    }
    Some(pages * page_size)
}

/// A fresh, empty directory under `base`.
pub fn fresh_dir(base: &Path, name: &str) -> Result<PathBuf> {
    let dir = base.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// A latency histogram in microseconds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records a duration in microseconds (clamped into the histogram's range).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, 600_000_000);
    h.saturating_record(us);
}

/// p50/p90/p99/max of a histogram of microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// A duration in seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// A rate with no decimals and thin grouping (12 345).
pub fn rate(per_s: f64) -> String {
    group(per_s.round() as u64)
}

/// An integer grouped by thousands.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// What one subcommand measured: a Markdown section, and whether every correctness check of it
/// held (lost callbacks, wrong answers, changed state…).
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub body: String,
    /// One-line figures for the summary at the top of the report.
    pub headline: Vec<String>,
    /// Problems found (empty: every check held).
    pub problems: Vec<String>,
}

impl Section {
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n{}", self.title, self.body.trim_end());
        out.push_str("\n\n");
        if self.problems.is_empty() {
            out.push_str("Checks: all held.\n");
        } else {
            out.push_str("Checks: **problems found**:\n\n");
            for p in &self.problems {
                let _ = writeln!(out, "- {p}");
            }
        }
        out
    }
}

/// Runs a command to completion and returns its first line of standard output.
pub fn command_line_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        let line = "2026-05-01T00:00:00Z  INFO lunas::cli: lunas gateway listening on http://127.0.0.1:41234 addr=127.0.0.1:41234";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(listening_addr("nothing here"), None);
    }

    #[test]
    fn reads_proc_status_fields() {
        let text = "Name:\tlunas\nVmPeak:\t  123456 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(status_field_kib(text, "VmHWM"), Some(40960));
        assert_eq!(status_field_kib(text, "VmRSS"), Some(30000));
        assert_eq!(status_field_kib(text, "VmSwap"), None);
    }

    #[test]
    fn reads_the_size_of_a_sqlite_database_from_its_files() {
        let mut main = vec![0u8; 100];
        main[..16].copy_from_slice(b"SQLite format 3\0");
        main[16..18].copy_from_slice(&4096u16.to_be_bytes());
        main[24..28].copy_from_slice(&7u32.to_be_bytes());
        main[28..32].copy_from_slice(&10u32.to_be_bytes());
        main[92..96].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(sqlite_size(&main, &[]), Some(10 * 4096));
        let mut wal = vec![0u8; 32];
        wal[..4].copy_from_slice(&0x377f_0682u32.to_be_bytes());
        wal[8..12].copy_from_slice(&4096u32.to_be_bytes());
        wal[16..24].copy_from_slice(b"saltsalt");
        let frame = |commit: u32, salt: &[u8; 8]| {
            let mut f = vec![0u8; 24 + 4096];
            f[4..8].copy_from_slice(&commit.to_be_bytes());
            f[8..16].copy_from_slice(salt);
            f
        };
        wal.extend(frame(0, b"saltsalt"));
        wal.extend(frame(12, b"saltsalt"));
        wal.extend(frame(0, b"saltsalt"));
        // A frame of an earlier generation of the log ends it.
        wal.extend(frame(99, b"oldsalts"));
        assert_eq!(sqlite_size(&main, &wal), Some(12 * 4096));
        assert_eq!(sqlite_size(b"not a database", &[]), None);
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }
}
