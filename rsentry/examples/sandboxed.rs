//! Runs untrusted code in an rsentry sandbox from Rust: a Python one-liner that reads a
//! read-only bind mount, under a memory and CPU limit, then `cat` through stdio pipes.
//!
//! ```text
//! cargo build --release -p rsentry --example sandboxed
//! sudo target/release/examples/sandboxed [systrap|ptrace|kvm]   (default: systrap)
//! ```

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use rsentry::{Limits, Network, Platform, ReadOnly, Sandbox};

fn main() -> ExitCode {
    // First thing: the sandbox's own processes are this program, re-executed.
    rsentry::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandboxed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let platform = match std::env::args().nth(1).as_deref() {
        Some("ptrace") => Platform::Ptrace,
        Some("kvm") => Platform::Kvm,
        None | Some("systrap") => Platform::Systrap,
        Some(other) => return Err(format!("unknown platform {other}").into()),
    };
    let data = tempfile::tempdir()?;
    std::fs::write(data.path().join("greeting"), "hello from the host\n")?;

    // Run a program to its end and collect what it printed.
    let out = Sandbox::builder()
        .platform(platform)
        .network(Network::None)
        .env("LANG", "C.UTF-8")
        .cwd("/data")
        .bind(data.path(), "/data", ReadOnly)
        .limits(Limits {
            memory: 256 << 20,
            cpu_time: Duration::from_secs(10),
        })
        .command([
            "python3",
            "-c",
            "import os; print(open('greeting').read().strip()); print(os.getpid())",
        ])
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("python3: {}", out.status).into());
    }

    // Start a program, talk to it through pipes, wait for it.
    let mut child = Sandbox::builder()
        .platform(platform)
        .command(["cat"])
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin pipe")?
        .write_all(b"echoed by cat in the sandbox\n")?;
    let mut echoed = String::new();
    child
        .stdout
        .take()
        .ok_or("no stdout pipe")?
        .read_to_string(&mut echoed)?;
    let status = child.wait()?;
    print!("{echoed}");
    println!("cat: {status}");
    Ok(())
}
