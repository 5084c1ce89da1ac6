//! Measures round trips over a socketpair with a trivial server:
//! `cargo run --release -p lisafs-proto --example roundtrip [threads] [calls-per-thread]`.

use std::time::Instant;

use lisafs_proto::*;

struct Echo;

impl Dispatcher for Echo {
    fn fstat(&self, req: FStatReq) -> HandlerResult<FStatResp> {
        Ok(FStatResp {
            stat: Stat {
                ino: req.node.0,
                ..Stat::default()
            },
        })
    }

    fn pread(&self, req: PReadReq) -> HandlerResult<PReadResp> {
        Ok(PReadResp {
            data: vec![0; req.count as usize],
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let calls: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let (c, s) = socketpair()?;
    let server = std::thread::spawn(move || Server::new(s).serve(&Echo, threads));
    let client = Client::new(c)?;

    for (what, count) in [
        ("fstat", 0u32),
        ("pread 4 KiB", 4096),
        ("pread 1 MiB", 1 << 20),
    ] {
        let n = if count >= 1 << 20 { calls / 50 } else { calls };
        let start = Instant::now();
        std::thread::scope(|sc| {
            for t in 0..threads {
                let client = &client;
                sc.spawn(move || {
                    for i in 0..n {
                        if count == 0 {
                            let st = client.fstat(NodeId(i + t as u64)).expect("fstat");
                            assert_eq!(st.ino, i + t as u64);
                        } else {
                            let d = client.pread(HandleId(1), 0, count).expect("pread");
                            assert_eq!(d.len(), count as usize);
                        }
                    }
                });
            }
        });
        let total = n * threads as u64;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{what}: {total} calls on {threads} threads in {secs:.2} s = {:.0} calls/s",
            total as f64 / secs
        );
    }
    drop(client);
    server.join().map_err(|_| "server panicked")??;
    Ok(())
}
