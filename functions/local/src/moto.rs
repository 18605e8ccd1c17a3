//! Starts and stops moto's server, the local DynamoDB/EventBridge-compatible
//! endpoint, as a child process bound to loopback.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

pub struct MotoServer {
    child: Child,
    pub port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server is not installed; install it with: pip install 'moto[server]' (make run and make test do this for you)")]
    NotInstalled,
    #[error("could not start moto_server: {0}")]
    Spawn(std::io::Error),
    #[error("could not find a free loopback port: {0}")]
    NoPort(std::io::Error),
    #[error("moto_server did not start listening on 127.0.0.1:{0} within 30 s")]
    NotReady(u16),
}

/// A port the OS reports free now. Another process could take it before
/// moto binds it; start-up then fails with `NotReady` rather than hanging.
pub fn free_port() -> Result<u16, MotoError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(MotoError::NoPort)?;
    Ok(listener.local_addr().map_err(MotoError::NoPort)?.port())
}

impl MotoServer {
    pub async fn start() -> Result<Self, MotoError> {
        let port = free_port()?;
        // The repository's launcher when it is there (a checkout): the same
        // moto, with its memory leak and per-request routing cost fixed
        // (scripts/moto-iam.py), and no IAM enforcement for `make run`.
        let launcher =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/moto-iam.py");
        let mut command = if launcher.is_file() {
            let mut c = Command::new("python3");
            c.arg(&launcher)
                .arg("server")
                .env("INITIAL_NO_AUTH_ACTION_COUNT", "inf");
            c
        } else {
            Command::new("moto_server")
        };
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
        // SIGTERM to moto if this process dies without cleaning up.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MotoError::NotInstalled,
            _ => MotoError::Spawn(e),
        })?;
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.stop().await;
        Err(MotoError::NotReady(port))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
