//! The `lunas` binary as a child process: run to completion, or serve until killed, with
//! every wait bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// How long any one step of a child process may take before the test gives up.
pub const BOUND: Duration = Duration::from_secs(30);

/// The binary with a clean environment (no `LUNAS__` overrides, no `lunas.toml` nearby).
pub fn lunas(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lunas"));
    cmd.env_clear()
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs a command to completion within [`BOUND`]: (exit code, stdout, stderr).
pub async fn run(mut cmd: Command) -> (i32, String, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tokio::time::timeout(BOUND, cmd.output())
        .await
        .expect("the command finishes in time")
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `lunas serve`.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    /// The stderr lines read before the listening line.
    pub early: Vec<String>,
    /// The rest of stderr, complete once the process has ended.
    pub rest: JoinHandle<Vec<String>>,
}

impl Served {
    /// Starts `lunas serve --config <config>` and waits for its "listening on" line.
    pub async fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Served {
        let mut cmd = lunas(dir);
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied());
        Self::start_command(cmd).await
    }

    /// Starts a `lunas serve` command line and waits for its "listening on" line.
    pub async fn start_command(mut cmd: Command) -> Served {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("lunas serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut early = Vec::new();
        let addr = loop {
            let line = tokio::time::timeout(BOUND, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no listening line in time; stderr: {early:#?}"))
                .unwrap()
                .unwrap_or_else(|| panic!("serve exited early; stderr: {early:#?}"));
            let found = listening_addr(&line);
            early.push(line);
            if let Some(addr) = found {
                break addr;
            }
        };
        // Keep reading, so a chatty log never blocks the server on a full pipe.
        let rest = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push(line);
            }
            rest
        });
        Served {
            child,
            addr,
            early,
            rest,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILLs the process and returns everything it wrote to stderr.
    pub async fn kill(mut self) -> Vec<String> {
        self.child.kill().await.expect("kill -9");
        let rest = tokio::time::timeout(BOUND, self.rest)
            .await
            .expect("stderr closes")
            .unwrap();
        self.early.into_iter().chain(rest).collect()
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
