//! Cost of the memory file's atomic copies against a plain `memcpy` of the same sizes
//! (`cargo bench -p platform --bench memory_copy`). Prints GB/s per size; a measurement,
//! never an assertion.

use std::hint::black_box;
use std::time::Instant;

use platform::MemoryFile;

fn rate(bytes: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    (bytes * iters) as f64 / start.elapsed().as_secs_f64() / 1e9
}

fn main() {
    let mf = MemoryFile::new("bench", 64 << 20).expect("memory file");
    let off = mf.allocate(32 << 20).expect("allocate");
    let plain_src = vec![7u8; 16 << 20];
    println!(
        "{:>9} {:>7} {:>13} {:>13} {:>13} {:>13}",
        "size", "offset", "read_at GB/s", "write_at GB/s", "memcpy GB/s", "read/memcpy"
    );
    for (size, misalign) in [
        (64, 0),
        (64, 3),
        (512, 0),
        (4096, 0),
        (4096, 5),
        (65536, 0),
        (1 << 20, 0),
        (16 << 20, 0),
    ] {
        let iters = ((256 << 20) / size).clamp(8, 1 << 20);
        let mut buf = vec![0u8; size];
        let read = rate(size, iters, || {
            mf.read_at(off + misalign, black_box(&mut buf))
                .expect("read_at")
        });
        let src = vec![1u8; size];
        let write = rate(size, iters, || {
            mf.write_at(off + misalign, black_box(&src))
                .expect("write_at")
        });
        let mut dst = vec![0u8; size];
        let memcpy = rate(size, iters, || {
            black_box(&mut dst).copy_from_slice(black_box(&plain_src[misalign as usize..][..size]))
        });
        println!(
            "{size:>9} {misalign:>7} {read:>13.2} {write:>13.2} {memcpy:>13.2} {:>13.2}",
            read / memcpy
        );
    }
}
