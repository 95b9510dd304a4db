//! The moto launcher: starts from the test venv, answers, resets, stops by pid.

use modelport_testkit::Moto;

#[test]
fn moto_starts_answers_resets_and_stops() {
    let moto = Moto::start().expect("moto must be installed: run scripts/test");
    let pid = moto.pid();
    moto.create_bucket("one").unwrap();
    let listing = list_buckets(&moto);
    assert!(listing.contains("<Name>one</Name>"), "{listing}");
    moto.reset().unwrap();
    assert!(!list_buckets(&moto).contains("<Name>one</Name>"));
    drop(moto);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(cmdline.is_empty(), "moto_server {pid} still runs");
}

/// `GET /` (ListBuckets) through a plain TCP request.
fn list_buckets(moto: &modelport_testkit::Moto) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", moto.port())).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
