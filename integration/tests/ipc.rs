//! IPC and waiting through `runsc do`, on every platform: pipes and FIFOs, poll/select,
//! epoll, eventfd and timerfd, Unix domain sockets (with descriptor and credential
//! passing), SysV IPC and Python's multiprocessing. Each C fixture prints one `ok <part>`
//! line per part it checked and exits with the number of the failed step otherwise.
//! No test asserts a timing: timeouts only check that the call returned "not ready".

use integration::{Link, Platform, fixture, have_tool, path_str, runsc_do, runsc_do_stdin};

integration::on_every_platform!(
    pipes_pipe2_flags_and_fifos,
    poll_select_readiness_and_timeouts,
    epoll_level_edge_oneshot_eventfd_timerfd,
    unix_sockets_names_options_and_rights,
    across_processes_rights_atomicity_and_wakeups,
    signalfd_reads_pending_signals,
    host_stdin_readiness,
    bash_pipelines_and_process_substitution,
    sysv_shm_sem_msg,
    python_multiprocessing,
    python_asyncio_unix_server_and_subprocess,
);

/// Runs fixture `name` (static) with `args` and checks that it succeeded and printed
/// exactly the `ok` lines in `parts`.
fn expect_parts(p: Platform, name: &str, args: &[&str], parts: &[&str]) {
    let exe = fixture(name, Link::Static);
    let mut cmd = vec![path_str(&exe)];
    cmd.extend_from_slice(args);
    let run = runsc_do(p, &[], &cmd);
    run.assert_success(name);
    let want: String = parts.iter().map(|s| format!("ok {s}\n")).collect();
    assert_eq!(run.stdout, want, "{run:#?}");
}

fn pipes_pipe2_flags_and_fifos(p: Platform) {
    expect_parts(
        p,
        "ipc_pipe",
        &[],
        &["pipe2", "epipe", "pipe-size", "packet", "fifo"],
    );
}

fn poll_select_readiness_and_timeouts(p: Platform) {
    expect_parts(p, "ipc_poll", &[], &["poll", "select", "poll-eventfd"]);
}

fn epoll_level_edge_oneshot_eventfd_timerfd(p: Platform) {
    expect_parts(
        p,
        "ipc_epoll",
        &[],
        &["level", "edge", "oneshot", "nested", "eventfd", "timerfd"],
    );
}

fn unix_sockets_names_options_and_rights(p: Platform) {
    expect_parts(
        p,
        "ipc_unix",
        &[],
        &[
            "stream-pair",
            "seqpacket-dgram",
            "abstract",
            "filesystem",
            "dgram-creds",
            "scm-rights",
            "errors",
        ],
    );
}

fn across_processes_rights_atomicity_and_wakeups(p: Platform) {
    expect_parts(
        p,
        "ipc_fork",
        &[],
        &[
            "scm-rights",
            "pipe-atomic",
            "fifo-open",
            "wakeups",
            "socket-accept",
            "eintr",
        ],
    );
}

fn signalfd_reads_pending_signals(p: Platform) {
    expect_parts(p, "ipc_signalfd", &[], &["nonblocking", "blocking"]);
}

fn host_stdin_readiness(p: Platform) {
    // stdin is a host pipe: its readiness comes from polling the host descriptor.
    let exe = fixture("ipc_stdin", Link::Static);
    let run = runsc_do_stdin(p, &[], &[path_str(&exe)], b"input\n");
    run.assert_success("ipc_stdin");
    assert_eq!(run.stdout, "ok host-fd\n", "{run:#?}");
}

fn bash_pipelines_and_process_substitution(p: Platform) {
    if !have_tool("/bin/bash") {
        return;
    }
    // Process substitution reopens pipes through /dev/fd (never waiting like a FIFO).
    let script = "diff <(seq 3) <(seq 4); seq 5 | sort -r | head -n 2; cat <(echo hi) | tr a-z A-Z";
    let run = runsc_do(p, &[], &["/bin/bash", "-c", script]);
    assert_eq!(run.stdout, "3a4\n> 4\n5\n4\nHI\n", "{run:#?}");
    assert_eq!(run.code, 0, "{run:#?}");
}

fn sysv_shm_sem_msg(p: Platform) {
    expect_parts(p, "ipc_sysv", &[], &["shm", "sem", "msg", "posix-shm"]);
}

fn python_multiprocessing(p: Platform) {
    if !have_tool("/usr/bin/python3") {
        return;
    }
    let script = "import multiprocessing as mp\n\
                  def sq(x):\n    return x * x\n\
                  if __name__ == '__main__':\n\
                  \x20   q = mp.Queue()\n\
                  \x20   pr = mp.Process(target=q.put, args=(41,))\n\
                  \x20   pr.start(); print(q.get() + 1); pr.join()\n\
                  \x20   with mp.Pool(2) as pool:\n\
                  \x20       print(sum(pool.map(sq, range(10))))\n\
                  \x20   ctx = mp.get_context('forkserver')\n\
                  \x20   with ctx.Pool(2) as pool:\n\
                  \x20       print(sum(pool.map(abs, range(-4, 0))))\n\
                  \x20   lock = ctx.Lock(); print(lock.acquire(timeout=5))\n";
    let run = runsc_do(p, &[], &["/usr/bin/python3", "-c", script]);
    run.assert_success("python multiprocessing");
    assert_eq!(run.stdout, "42\n285\n10\nTrue\n", "{run:#?}");
}

fn python_asyncio_unix_server_and_subprocess(p: Platform) {
    if !have_tool("/usr/bin/python3") {
        return;
    }
    // asyncio runs on epoll with a socketpair self-pipe; the server is a Unix socket on a
    // filesystem name; the subprocess's output comes through a pipe; a thread writes to a
    // socketpair the main thread reads.
    let script = r#"
import asyncio, os, socket, threading
path = "/tmp/ipc_asyncio_%d.sock" % os.getpid()
async def echo(r, w):
    w.write((await r.readline()).upper()); await w.drain(); w.close()
async def main():
    srv = await asyncio.start_unix_server(echo, path=path)
    r, w = await asyncio.open_unix_connection(path)
    w.write(b"hello\n"); await w.drain()
    print((await r.readline()).decode().strip())
    w.close(); srv.close(); await srv.wait_closed()
    proc = await asyncio.create_subprocess_exec("/bin/echo", "sub", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    print(out.decode().strip(), proc.returncode)
asyncio.run(main())
os.unlink(path)
a, b = socket.socketpair()
t = threading.Thread(target=lambda: b.sendall(b"x" * 100000)); t.start()
got = 0
while got < 100000:
    got += len(a.recv(65536))
t.join(); print("threads", got)
"#;
    let run = runsc_do(p, &[], &["/usr/bin/python3", "-c", script]);
    run.assert_success("python asyncio");
    assert_eq!(run.stdout, "HELLO\nsub 0\nthreads 100000\n", "{run:#?}");
}
