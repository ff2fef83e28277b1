//! The machine description and `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::util::{command_line_output, repo_root, secs, Section};

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// What the numbers were measured on. `load_before` and `fsync_before` were measured when the
/// run began; both are measured again now.
pub fn machine(
    work_dir: &Path,
    lunas_bin: &Path,
    load_before: &str,
    fsync_before: &(String, Option<u64>),
) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| crate::util::status_field_kib(&t, "MemTotal"))
        .map_or("unknown".into(), |k| {
            format!("{:.1} GiB", k as f64 / 1024.0 / 1024.0)
        });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let rustc = command_line_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into());
    let disk = disk_of(work_dir);
    let (fsync, fsync_p50) = fsync_latency(work_dir);
    let fsync_p50 = fsync_p50.max(fsync_before.1);
    let fsync_note = match fsync_p50 {
        Some(us) if us < 200 => format!(
            "\n\nAn fsync of {} ms means this (virtual) disk acknowledges writes from a cache. \
             Durability costs little here; where an fsync takes about 1 ms, a commit per request \
             would cap ingest near 1,000/s and group commit would matter much more than these \
             figures show.",
            crate::util::ms(us)
        ),
        Some(us) if us >= 1000 => format!(
            "\n\nAn fsync took {} ms (median) at some point of this run: every group commit \
             waits that long, which bounds the commit rate and the latency floor; on a shared \
             virtual disk it varies with the other work on the host.",
            crate::util::ms(us)
        ),
        _ => String::new(),
    };
    let commit = command_line_output(
        "git",
        &[
            "-C",
            &repo_root().to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    )
    .unwrap_or_else(|| "unknown".into());
    let dirty = std::process::Command::new("git")
        .args([
            "-C",
            &repo_root().to_string_lossy(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let bin_time = std::fs::metadata(lunas_bin)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| {
            time::OffsetDateTime::from(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "missing".into());
    format!(
        "| | |\n|---|---|\n\
         | CPU | {cpu}, {nproc} cores (`nproc`) |\n\
         | memory | {mem} |\n\
         | kernel | Linux {kernel} |\n\
         | rustc | {rustc} |\n\
         | disk (databases) | {disk} |\n\
         | fsync on that disk (4 KiB write + fdatasync, 200 times) | when the run began: {fsync_start}; when it ended: {fsync} |\n\
         | load average (1, 5, 15 min) | {load_before} when the run began, {} when it ended (anything well above 0 at the start means other work shared the cores) |\n\
         | lunas | commit {commit}{}; `{}` built {bin_time} |{fsync_note}",
        loadavg(),
        if dirty { " (with uncommitted changes)" } else { "" },
        lunas_bin.display(),
        fsync_start = fsync_before.0,
    )
}

/// How long the disk takes to make a small write durable: what a commit waits for.
pub fn fsync_latency(dir: &Path) -> (String, Option<u64>) {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let measure = || -> std::io::Result<(String, u64)> {
        let mut f = std::fs::File::create(&path)?;
        let block = [0x5au8; 4096];
        let mut h = crate::util::histogram();
        for _ in 0..200 {
            let t = std::time::Instant::now();
            f.write_all(&block)?;
            f.sync_data()?;
            crate::util::record(&mut h, t.elapsed());
        }
        let p = crate::util::Percentiles::of(&h);
        Ok((
            format!(
                "p50 {} ms, p99 {} ms, max {} ms",
                crate::util::ms(p.p50),
                crate::util::ms(p.p99),
                crate::util::ms(p.max)
            ),
            p.p50,
        ))
    };
    let out = match measure() {
        Ok((text, p50)) => (text, Some(p50)),
        Err(e) => (format!("could not measure: {e}"), None),
    };
    let _ = std::fs::remove_file(&path);
    out
}

/// The device, filesystem and mount options the path lives on (from `/proc/mounts`).
pub fn disk_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown".into();
    };
    let best = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, at, fs, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
            path.starts_with(at)
                .then_some((at.len(), dev, at, fs, opts))
        })
        .max_by_key(|m| m.0);
    match best {
        Some((_, dev, at, fs, opts)) => {
            let name = dev.trim_start_matches("/dev/");
            let rotational = std::fs::read_to_string(format!("/sys/block/{name}/queue/rotational"))
                .ok()
                .map(|s| {
                    if s.trim() == "0" {
                        ", non-rotational"
                    } else {
                        ", rotational"
                    }
                })
                .unwrap_or("");
            format!(
                "{dev} ({fs}{rotational}) mounted on {at}, options {opts}; databases in {}",
                path.display()
            )
        }
        None => "unknown".into(),
    }
}

/// The whole report.
pub fn document(
    sections: &[Section],
    machine: &str,
    command: &str,
    smoke: bool,
    elapsed: Duration,
) -> String {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "# lunas benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `lunas-bench` (crate `crates/lunas-bench`, issue 9) on {date} in {} s. \
         Regenerate after any change to the hot path (callback → store → answer, delivery, \
         reconciler):\n\n```sh\ncargo build --release -p lunas -p lunas-bench\n{command}\n```\n",
        secs(elapsed)
    );
    if smoke {
        let _ = writeln!(
            out,
            "> **Smoke run** (`--smoke`): tiny sizes to check that the harness works. These \
             figures are not benchmarks.\n"
        );
    }
    let _ = writeln!(out, "## Summary\n");
    for s in sections {
        for line in &s.headline {
            let _ = writeln!(out, "- {line}");
        }
    }
    let problems: usize = sections.iter().map(|s| s.problems.len()).sum();
    let _ = writeln!(
        out,
        "- Correctness checks: {}.\n",
        if problems == 0 {
            "all held".to_owned()
        } else {
            format!("**{problems} problem(s)** — see the sections")
        }
    );
    let _ = writeln!(out, "## Machine\n\n{machine}\n");
    let _ = writeln!(
        out,
        "Everything ran on this one machine: load generator, lunas, baseline, receivers and \
         stubs share its cores; all traffic is to 127.0.0.1.\n"
    );
    for s in sections {
        let _ = writeln!(out, "{}", s.markdown());
    }
    out
}
