//! The service's lifecycle over its real parts (SQLite store, HTTP server, recorder thread, a camera
//! runner): start, serve, stop on request in order.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use roadwarden_rules::SiteConfig;
use roadwarden_server::ServerConfig;
use roadwarden_service::{
    DataDir, Events, IfMissing, Service, ServiceError, Setup, Shutdown, Tally, block_on, open_store,
};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    out
}

#[test]
fn starts_serves_and_stops_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let site_file = root().join("examples/site.toml");
    let site = SiteConfig::load(&site_file).unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let setup = Setup {
        site_file,
        listen: "127.0.0.1:0".parse().unwrap(),
        server: ServerConfig::default(),
        events: Events::default(),
        ort: Default::default(),
        data: data.clone(),
        database_url: None,
        node_id: None,
    };
    let service = Service::start(site, setup).expect("start");
    let addr = service.local_addr();
    assert_ne!(addr.port(), 0);
    assert!(
        data.sqlite_path().is_file(),
        "the store is created at start"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let running = std::thread::spawn(move || service.run(Shutdown::OnRequest(stopped)));
    let health = get(addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // The example camera has no `source.url`: its runner fails and is retried, the service runs on.
    let cameras = get(addr, "/api/cameras");
    assert!(cameras.starts_with("HTTP/1.1 401"), "{cameras}");
    let asked = Instant::now();
    stop.send(()).unwrap();
    let tally = running.join().expect("no panic").expect("clean stop");
    assert_eq!(
        tally,
        Tally::default(),
        "nothing was handed to the recorder"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    assert!(TcpStream::connect(addr).is_err(), "the HTTP server is gone");
}

#[test]
fn verify_refuses_a_folder_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let refused = block_on(open_store(&data, None, IfMissing::Refuse)).unwrap();
    match refused {
        Err(ServiceError::NoStore(path)) => assert_eq!(path, data.sqlite_path()),
        other => panic!("expected NoStore, got {:?}", other.map(|_| ())),
    }
    assert!(!data.sqlite_path().exists(), "nothing was created");
    let store = block_on(open_store(&data, None, IfMissing::Create))
        .unwrap()
        .expect("created");
    block_on(store.close()).unwrap();
    assert!(data.sqlite_path().is_file());
}
