//! A real TCP proxy on 127.0.0.1 in front of a server (PostgreSQL in the suites) that a test can cut
//! (open connections shut down, new ones closed at once) and restore: a database outage without
//! touching the database.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The proxy; it listens until the test process ends.
pub struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a free port) and forwards each connection to `target` (`host:port`).
    ///
    /// # Panics
    /// When no port on 127.0.0.1 can be bound (a test's precondition).
    pub fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port on 127.0.0.1");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                conns2
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend([c2, s2]);
                for (mut from, mut to) in [(c3, s3), (server, client)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `url` with `target` (as given to [`Proxy::start`]) replaced by this proxy's address.
    ///
    /// # Panics
    /// When `url` does not contain `target`.
    pub fn url(&self, url: &str, target: &str) -> String {
        assert!(url.contains(target), "{url} does not go to {target}");
        url.replace(target, &format!("127.0.0.1:{}", self.port))
    }

    /// The outage: every open connection is shut down, new ones are closed at once.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// The end of the outage: new connections go through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
