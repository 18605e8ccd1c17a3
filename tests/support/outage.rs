//! A TCP proxy in front of the DynamoDB server that can be taken down and
//! brought back: to its clients, exactly a server that died and restarted,
//! without losing moto's in-memory state (which a real kill of moto would).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct OutageProxy {
    /// `http://127.0.0.1:<port>`: point the SDK here.
    pub endpoint: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl OutageProxy {
    /// Proxies to `target` (e.g. the AWS_ENDPOINT_URL of moto).
    pub async fn start(target: &str) -> OutageProxy {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound); // refused: the server is down
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        OutageProxy {
            endpoint,
            up,
            connections,
            accept,
        }
    }

    fn cut(&self) {
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// The server dies: open connections are cut, new ones are dropped.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut();
    }

    /// The server is back.
    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
