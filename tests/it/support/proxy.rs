//! A TCP proxy in front of a real server that can be told to fail: refuse
//! connections, or accept them and never answer. Stands in for a store outage.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Forward = 0,
    /// Connections are closed as soon as they send anything.
    Refuse = 1,
    /// Connections are held open and never answered.
    Hang = 2,
}

pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`), forwarding until told otherwise.
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(Mode::Forward as u8));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, shared.clone()));
            }
        });
        Self { addr, mode }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mode: Arc<AtomicU8>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut server_read, mut server_write) = server.into_split();
    let (mut client_read, mut client_write) = client.split();
    let to_client = tokio::io::copy(&mut server_read, &mut client_write);
    let to_server = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            match mode.load(Ordering::SeqCst) {
                m if m == Mode::Forward as u8 => server_write.write_all(&buf[..n]).await?,
                m if m == Mode::Refuse as u8 => return Ok(()),
                _ => std::future::pending::<()>().await,
            }
        }
    };
    tokio::select! {
        _ = to_client => {}
        _ = to_server => {}
    }
}
