//! One Runtime Interface Emulator process with one bootstrap, on loopback ports of its own.
//!
//! Lambda's runtime API is what the bootstrap talks to; the emulator adds the invoke endpoint
//! that `sam local invoke` posts to. Each instance is a warm function: invoke it as often as you
//! like, then [`Emulator::stop`] it and read what it printed (the runtime's START/END/REPORT lines
//! and the function's own logs, in order).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::InvokeError;

/// What the invoke endpoint answered: 200 with the function's result (or its `errorType` body
/// when the handler failed), 502 when the bootstrap crashed.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Invocation {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why an emulator is not ready.
enum Ready {
    Exited,
    TimedOut,
}

#[derive(Debug)]
pub struct Emulator {
    child: Child,
    invoke_url: String,
    log_path: PathBuf,
    http: reqwest::Client,
}

/// Two loopback ports that were free a moment ago, and not the same one: both are held while the
/// second is picked (picked one after the other, the second could be the first again, and the
/// emulator would then fail to listen on its second address).
fn free_ports() -> Result<(u16, u16), InvokeError> {
    let first = std::net::TcpListener::bind("127.0.0.1:0")?;
    let second = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((first.local_addr()?.port(), second.local_addr()?.port()))
}

impl Emulator {
    /// Starts `emulator` serving `bootstrap` with exactly `env` (plus Lambda's `PATH` and `TZ`),
    /// writing everything both print to `log_path`.
    pub async fn start(
        emulator: &Path,
        bootstrap: &Path,
        env: &[(String, String)],
        log_path: &Path,
    ) -> Result<Self, InvokeError> {
        if !emulator.is_file() {
            return Err(InvokeError::NoEmulator(emulator.to_owned()));
        }
        if !bootstrap.is_file() {
            return Err(InvokeError::NoBootstrap(bootstrap.to_owned()));
        }
        Self::start_on(emulator, bootstrap, env, log_path, free_ports).await
    }

    /// [`Self::start`] on the ports `ports` picks. A port picked free can be taken before the
    /// emulator listens on it (by an outgoing connection's ephemeral port): the emulator then
    /// exits at once, and another pair is tried, three times at most.
    async fn start_on(
        emulator: &Path,
        bootstrap: &Path,
        env: &[(String, String)],
        log_path: &Path,
        mut ports: impl FnMut() -> Result<(u16, u16), InvokeError>,
    ) -> Result<Self, InvokeError> {
        for _ in 0..3 {
            let (invoke_port, runtime_port) = ports()?;
            let log = std::fs::File::create(log_path)?;
            let child = Command::new(emulator)
                .arg("--runtime-interface-emulator-address")
                .arg(format!("127.0.0.1:{invoke_port}"))
                .arg("--runtime-api-address")
                .arg(format!("127.0.0.1:{runtime_port}"))
                .arg(bootstrap)
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("TZ", ":UTC")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()?;
            let mut emulator = Self {
                child,
                invoke_url: format!(
                    "http://127.0.0.1:{invoke_port}/2015-03-31/functions/function/invocations"
                ),
                log_path: log_path.to_owned(),
                http: reqwest::Client::new(),
            };
            match emulator.wait_ready(invoke_port, 10).await {
                Ok(()) => return Ok(emulator),
                Err(Ready::Exited) => {
                    let printed = std::fs::read_to_string(log_path).unwrap_or_default();
                    if !printed.contains("address already in use") {
                        let start = printed.len().saturating_sub(1_000);
                        let tail = printed.get(start..).unwrap_or(&printed);
                        return Err(InvokeError::Exited(tail.to_owned()));
                    }
                }
                Err(Ready::TimedOut) => return Err(InvokeError::NotReady(10)),
            }
        }
        Err(InvokeError::NotReady(10))
    }

    /// Waits until the invoke endpoint accepts connections, or the emulator exits.
    async fn wait_ready(&mut self, port: u16, seconds: u64) -> Result<(), Ready> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while tokio::time::Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return Err(Ready::Exited);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Ready::TimedOut)
    }

    /// The bootstrap's process id, once the emulator has started it (at the first invoke).
    pub fn bootstrap_pid(&self) -> Option<u32> {
        let emulator = self.child.id()?;
        let tasks = std::fs::read_dir(format!("/proc/{emulator}/task")).ok()?;
        tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find_map(|pid| pid.parse().ok())
    }

    /// Posts one event, as `sam local invoke -e` does, and waits for the answer.
    pub async fn invoke(&self, event: &[u8]) -> Result<Invocation, InvokeError> {
        let resp = self
            .http
            .post(&self.invoke_url)
            .body(event.to_vec())
            .timeout(Duration::from_secs(60))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?.to_vec();
        Ok(Invocation { status, body })
    }

    /// Stops the emulator and its bootstrap and returns everything they printed.
    pub async fn stop(mut self) -> Result<String, InvokeError> {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        Ok(tokio::fs::read_to_string(&self.log_path).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The emulator of `tools/.venv` (tools/install.sh) with a bootstrap it never runs: it starts
    /// one only at the first invoke.
    #[tokio::test]
    async fn a_taken_port_is_tried_again_with_another() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("emulator-port-{}.log", std::process::id()));
        let mut picks = 0;
        let emulator = Emulator::start_on(
            &crate::emulator_path().unwrap(),
            Path::new("/bin/true"),
            &[],
            &log,
            || {
                picks += 1;
                let (invoke, runtime) = free_ports()?;
                Ok(if picks == 1 {
                    (invoke, taken_port)
                } else {
                    (invoke, runtime)
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(picks, 2, "the first pair's runtime port was taken");
        let _ = emulator.stop().await;
        let _ = std::fs::remove_file(&log);
    }
}
