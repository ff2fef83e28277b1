//! The cargo-fuzz targets of `fuzz/`, each for a bounded time, with libFuzzer's counts of
//! executions and crashes read from its output.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::util::{group, rate, repo_root, table};

pub const TARGETS: &[&str] = &["iak_callback", "iak_answers", "postpaid", "mcp"];

/// What libFuzzer said about one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzStats {
    pub execs: Option<u64>,
    pub seconds: Option<u64>,
    pub coverage: Option<u64>,
    pub crashes: u64,
    /// Where the crashing inputs were written.
    pub artifacts: Vec<String>,
    /// The first line that says what went wrong.
    pub error: Option<String>,
}

/// Reads libFuzzer's output (run with `-print_final_stats=1`).
pub fn parse_output(text: &str) -> FuzzStats {
    let mut s = FuzzStats::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.execs = v.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // "Done 123456 runs in 10 second(s)"
            let mut words = rest.split_whitespace();
            let runs = words.next().and_then(|w| w.parse().ok());
            let secs = words.nth(2).and_then(|w| w.parse().ok());
            s.execs = s.execs.or(runs);
            s.seconds = secs;
        } else if line.contains("Test unit written to") {
            s.crashes += 1;
            if let Some(path) = line.split("Test unit written to").nth(1) {
                s.artifacts.push(path.trim().to_owned());
            }
        } else if s.error.is_none()
            && (line.contains("==ERROR: libFuzzer")
                || line.contains("panicked at")
                || line.contains("deadly signal"))
        {
            s.error = Some(line.to_owned());
        }
        if line.contains(" DONE ") || line.starts_with('#') && line.contains("DONE") {
            if let Some(cov) = line.split("cov:").nth(1) {
                s.coverage = cov.split_whitespace().next().and_then(|w| w.parse().ok());
            }
        }
    }
    if s.crashes == 0 && s.error.is_some() {
        s.crashes = 1;
    }
    s
}

fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("fuzz")
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs every target for `secs` seconds. Returns the Markdown, a summary line and problems.
pub async fn run_all(secs: u64) -> (String, String, Vec<String>) {
    let fuzz_dir = repo_root().join("fuzz");
    let mut problems = Vec::new();
    let mut out = String::new();
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(version) = installed else {
        let note = "skipped: cargo-fuzz is not installed (`cargo install cargo-fuzz --locked`)";
        eprintln!("fuzz: {note}");
        return (format!("{note}.\n"), format!("Fuzzing: {note}."), problems);
    };
    // Build first, so the fuzzing time is fuzzing.
    let build_started = Instant::now();
    let build = cargo_fuzz(&fuzz_dir)
        .args(["build", "--sanitizer", "none"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await;
    let build_time = build_started.elapsed();
    match build {
        Ok(b) if b.status.success() => {}
        Ok(b) => {
            let err = String::from_utf8_lossy(&b.stderr);
            let tail: Vec<&str> = err.lines().rev().take(15).collect();
            let msg = format!(
                "the fuzz targets did not build: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            problems.push(msg.clone());
            return (
                format!("{msg}\n"),
                "Fuzzing: build failed.".into(),
                problems,
            );
        }
        Err(e) => {
            let msg = format!("cannot run cargo fuzz: {e}");
            problems.push(msg.clone());
            return (
                format!("{msg}\n"),
                "Fuzzing: could not run.".into(),
                problems,
            );
        }
    }
    let _ = writeln!(
        out,
        "{version}, `--sanitizer none` (the parsers have no `unsafe`), built in {:.0} s; each \
         target for {secs} s:\n\n```sh\ncd fuzz\nRUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none \
         <target> corpus/<target> seeds/<target> -- -max_total_time={secs} -print_final_stats=1\n```\n",
        build_time.as_secs_f64()
    );
    let mut rows = Vec::new();
    let (mut total_execs, mut total_crashes) = (0u64, 0u64);
    for target in TARGETS {
        let corpus = fuzz_dir.join("corpus").join(target);
        let _ = std::fs::create_dir_all(&corpus);
        eprintln!("fuzz: {target} for {secs} s");
        let started = Instant::now();
        let run = tokio::time::timeout(
            Duration::from_secs(secs + 300),
            cargo_fuzz(&fuzz_dir)
                .args(["run", "--sanitizer", "none", target])
                .arg(format!("corpus/{target}"))
                .arg(format!("seeds/{target}"))
                .arg("--")
                .arg(format!("-max_total_time={secs}"))
                .arg("-print_final_stats=1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output(),
        )
        .await;
        let wall = started.elapsed();
        let (stats, ok) = match run {
            Ok(Ok(o)) => {
                let text = format!(
                    "{}\n{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                (parse_output(&text), o.status.success())
            }
            Ok(Err(e)) => {
                problems.push(format!("fuzz {target}: cannot run: {e}"));
                continue;
            }
            Err(_) => {
                problems.push(format!("fuzz {target}: did not finish in time"));
                continue;
            }
        };
        let execs = stats.execs.unwrap_or(0);
        total_execs += execs;
        total_crashes += stats.crashes;
        if stats.crashes > 0 || !ok {
            problems.push(format!(
                "fuzz {target}: {} crash(es): {} {}",
                stats.crashes.max(1),
                stats.error.clone().unwrap_or_default(),
                stats.artifacts.join(", ")
            ));
        }
        let secs_run = stats.seconds.unwrap_or(wall.as_secs()).max(1);
        rows.push(vec![
            (*target).to_owned(),
            group(execs),
            rate(execs as f64 / secs_run as f64),
            stats.coverage.map_or("-".into(), |c| c.to_string()),
            stats.crashes.to_string(),
            if stats.artifacts.is_empty() {
                "-".into()
            } else {
                stats.artifacts.join(", ")
            },
        ]);
    }
    out.push_str(&table(
        &[
            "target",
            "executions",
            "exec/s",
            "coverage (edges)",
            "crashes",
            "crash inputs",
        ],
        &rows,
    ));
    let line = format!(
        "Fuzzing: {} targets × {secs} s, {} executions, {} crashes.",
        TARGETS.len(),
        group(total_execs),
        total_crashes
    );
    (out, line, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_clean_run() {
        let text = "INFO: Seed: 1\n#2\tINITED cov: 100 ft: 200 corp: 5/1Kb exec/s: 0 rss: 40Mb\n\
                    #123456\tDONE   cov: 812 ft: 3000 corp: 400/20Kb lim: 4096 exec/s: 12345 rss: 80Mb\n\
                    Done 123456 runs in 10 second(s)\nstat::number_of_executed_units: 123456\n\
                    stat::average_exec_per_sec:     12345\nstat::peak_rss_mb:              80\n";
        let s = parse_output(text);
        assert_eq!(s.execs, Some(123456));
        assert_eq!(s.seconds, Some(10));
        assert_eq!(s.coverage, Some(812));
        assert_eq!(s.crashes, 0);
        assert!(s.error.is_none());
    }

    #[test]
    fn reads_a_crash() {
        let text = "thread '<unnamed>' panicked at fuzz_targets/postpaid.rs:12:5:\nassertion failed\n\
                    ==1234== ERROR: libFuzzer: deadly signal\n\
                    artifact_prefix='/x/fuzz/artifacts/postpaid/'; Test unit written to /x/fuzz/artifacts/postpaid/crash-abc\n\
                    stat::number_of_executed_units: 999\n";
        let s = parse_output(text);
        assert_eq!(s.crashes, 1);
        assert_eq!(s.execs, Some(999));
        assert_eq!(
            s.artifacts,
            vec!["/x/fuzz/artifacts/postpaid/crash-abc".to_owned()]
        );
        assert!(s.error.unwrap().contains("panicked at"));
    }
}
