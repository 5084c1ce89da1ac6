//! Networking through `runsc do`, on every platform: TCP and UDP over the sandbox's own
//! loopback (IPv4, IPv6, dual stack), a real HTTP server and client in one sandbox,
//! interfaces through netlink (`ip`, `getifaddrs`), ioctls and `/proc/net`, and
//! isolation from the host's loopback with `--network=none`.
//!
//! The C fixture `net_inet` prints one `ok <part>` line per part and exits with the
//! number of the failed step otherwise; it passes natively too (its expectations are
//! Linux's). Traffic stays on loopback: the sandbox's own, and the host's only for the
//! isolation check.

use std::net::TcpListener;

use integration::{Link, Platform, fixture, path_str, runsc_do};

integration::on_every_platform!(
    tcp_echo_many_connections_and_half_close,
    tcp_nonblocking_connect_epoll_edge_and_flags,
    tcp_resets_errors_and_options,
    udp_datagrams_connect_and_mmsg,
    ipv6_and_dual_stack,
    python_http_server_answers_curl,
    none_cannot_reach_the_host_loopback,
    interfaces_getifaddrs_ioctls_and_proc_net,
    ip_addr_and_route_show_loopback,
);

fn interfaces_getifaddrs_ioctls_and_proc_net(p: Platform) {
    let exe = fixture("net_ifaddrs", Link::Static);
    let run = runsc_do(p, &[], &[path_str(&exe)]);
    run.assert_success("net_ifaddrs");
    assert_eq!(
        run.stdout, "ok getifaddrs\nok ioctls\nok proc-net\n",
        "{run:#?}"
    );
}

/// iproute2 over netlink: `ip addr` lists `lo` with 127.0.0.1/8 and ::1/128, and the
/// local routing table has 127.0.0.0/8.
fn ip_addr_and_route_show_loopback(p: Platform) {
    let run = runsc_do(
        p,
        &[],
        &[
            "/bin/sh",
            "-c",
            "ip -o addr show; ip route show table local",
        ],
    );
    run.assert_success("ip addr");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("1: lo    inet 127.0.0.1/8 scope host lo")),
        "{run:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("1: lo    inet6 ::1/128 scope host")),
        "{run:#?}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1")
        ),
        "{run:#?}"
    );
    assert_eq!(lines.len(), 3, "{run:#?}");
}

/// Runs `net_inet` for `parts` and checks each printed its `ok` line.
fn expect_parts(p: Platform, parts: &[&str]) {
    let exe = fixture("net_inet", Link::Static);
    for part in parts {
        let run = runsc_do(p, &[], &[path_str(&exe), part, "isolated"]);
        run.assert_success(part);
        assert_eq!(run.stdout, format!("ok {part}\n"), "{run:#?}");
    }
}

fn tcp_echo_many_connections_and_half_close(p: Platform) {
    expect_parts(p, &["tcp-echo", "many", "half-close"]);
}

fn tcp_nonblocking_connect_epoll_edge_and_flags(p: Platform) {
    expect_parts(p, &["nonblock-connect", "epoll-edge", "flags"]);
}

fn tcp_resets_errors_and_options(p: Platform) {
    expect_parts(p, &["resets", "errors", "options"]);
}

fn udp_datagrams_connect_and_mmsg(p: Platform) {
    expect_parts(p, &["udp"]);
}

fn ipv6_and_dual_stack(p: Platform) {
    expect_parts(p, &["ipv6"]);
}

/// `python3 -m http.server` and `curl` in one sandbox: the client retries until the
/// server listens (a refused connect is immediate, so this polls, never sleeps).
fn python_http_server_answers_curl(p: Platform) {
    let dir = integration::scratch_dir();
    std::fs::write(dir.path().join("index.txt"), "served from the sandbox\n").expect("write");
    let script = format!(
        "python3 -m http.server 8080 --bind 127.0.0.1 --directory {dir} >/dev/null 2>&1 &\n\
         srv=$!\n\
         for i in $(seq 1 5000); do\n\
           if out=$(curl -sS --max-time 30 http://127.0.0.1:8080/index.txt 2>/dev/null); then break; fi\n\
         done\n\
         ipv6=$(curl -sS --max-time 30 -o /dev/null -w '%{{http_code}}' http://[::1]:8080/index.txt 2>/dev/null)\n\
         kill $srv\n\
         wait $srv\n\
         printf '%s\\n' \"$out\"\n\
         printf 'ipv6 %s\\n' \"$ipv6\"\n",
        dir = path_str(dir.path())
    );
    let run = runsc_do(p, &[], &["/bin/bash", "-c", &script]);
    // The server binds 127.0.0.1 only: ::1 is refused (curl prints 000).
    assert_eq!(
        run.stdout, "served from the sandbox\nipv6 000\n",
        "{run:#?}"
    );
}

/// With `--network=none`, 127.0.0.1 inside is the sandbox's own loopback: a server on the
/// host's 127.0.0.1 is not reachable (refused: nothing listens on that port inside).
fn none_cannot_reach_the_host_loopback(p: Platform) {
    let host = TcpListener::bind("127.0.0.1:0").expect("bind on the host's loopback");
    host.set_nonblocking(true).expect("nonblocking");
    let port = host.local_addr().expect("addr").port();
    let code = format!(
        "import socket, errno\n\
         s = socket.socket()\n\
         try:\n    s.connect(('127.0.0.1', {port}))\n    print('connected')\n\
         except OSError as e:\n    print(errno.errorcode[e.errno])\n"
    );
    let run = runsc_do(p, &["--network=none"], &["python3", "-c", &code]);
    assert_eq!(run.stdout, "ECONNREFUSED\n", "{run:#?}");
    assert!(
        host.accept().is_err(),
        "the host's listener got a connection from the sandbox"
    );
}
