//! sysfs: a minimal, read-only `/sys` with what common programs and runtimes read:
//! `devices/system/cpu/{online,possible,present}`, `kernel/mm/transparent_hugepage/*`,
//! and empty `fs/cgroup`, `class` and `bus` directories.

use std::sync::Arc;

use super::synth::{Attrs, SynthDir, SynthFile};
use super::{Inode, magic};

/// Builds the sysfs tree and returns its root.
pub fn new_sysfs() -> Arc<dyn Inode> {
    let a = Attrs::root(super::new_dev(), magic::SYSFS);
    let n = super::proc::ncpus();
    let range = if n > 1 {
        format!("0-{}\n", n - 1)
    } else {
        "0\n".to_string()
    };
    let mut cpus: Vec<(Vec<u8>, Arc<dyn Inode>)> = vec![
        (b"online".to_vec(), SynthFile::fixed(a, range.clone())),
        (b"possible".to_vec(), SynthFile::fixed(a, range.clone())),
        (b"present".to_vec(), SynthFile::fixed(a, range)),
    ];
    for i in 0..n {
        cpus.push((
            format!("cpu{i}").into_bytes(),
            SynthDir::fixed(a, 0o555, vec![(b"online", SynthFile::fixed(a, "1\n"))]),
        ));
    }
    let cpu_dir = SynthDir::fixed(
        a,
        0o555,
        cpus.iter()
            .map(|(k, v)| (k.as_slice(), v.clone()))
            .collect(),
    );
    let system = SynthDir::fixed(a, 0o555, vec![(b"cpu", cpu_dir)]);
    let devices = SynthDir::fixed(a, 0o555, vec![(b"system", system)]);
    let thp = SynthDir::fixed(
        a,
        0o555,
        vec![
            (b"enabled", SynthFile::fixed(a, "always [madvise] never\n")),
            (
                b"defrag",
                SynthFile::fixed(a, "always defer defer+madvise [madvise] never\n"),
            ),
            (b"hpage_pmd_size", SynthFile::fixed(a, "2097152\n")),
        ],
    );
    let mm = SynthDir::fixed(a, 0o555, vec![(b"transparent_hugepage", thp)]);
    let kernel = SynthDir::fixed(a, 0o555, vec![(b"mm", mm)]);
    let fs = SynthDir::fixed(
        a,
        0o555,
        vec![(b"cgroup", SynthDir::fixed(a, 0o555, Vec::new()))],
    );
    SynthDir::fixed(
        a,
        0o555,
        vec![
            (b"devices", devices),
            (b"kernel", kernel),
            (b"fs", fs),
            (b"class", SynthDir::fixed(a, 0o555, Vec::new())),
            (b"bus", SynthDir::fixed(a, 0o555, Vec::new())),
        ],
    )
}
