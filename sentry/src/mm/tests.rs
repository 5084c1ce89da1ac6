//! Unit tests of the memory manager over a recording fake address space.

use parking_lot::Mutex;
use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mm::*;
use linux_abi::signal::{BUS_ADRERR, SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGSEGV};
use platform::{AccessType, Protection};

use super::testutil::new_mm;
use super::*;

const ANON: u32 = MAP_PRIVATE | MAP_ANONYMOUS;
const RW: u32 = PROT_READ | PROT_WRITE;

#[test]
fn copy_round_trip_and_demand_paging() {
    let (mm, fake) = new_mm();
    let a = mm.mmap(0, 3 * PAGE, RW, ANON, None).unwrap();
    assert_eq!(a % PAGE, 0);
    assert_eq!(mm.resident_pages(), 0, "mmap populates nothing");
    // A copy crossing a page boundary.
    mm.copy_out(a + PAGE - 3, b"hello!").unwrap();
    let mut buf = [0u8; 6];
    mm.copy_in(a + PAGE - 3, &mut buf).unwrap();
    assert_eq!(&buf, b"hello!");
    assert!(fake.prot(a).is_some_and(|p| p.write));
    mm.write_obj(a + 16, &0x1122_3344_5566_7788u64).unwrap();
    assert_eq!(mm.read_obj::<u64>(a + 16).unwrap(), 0x1122_3344_5566_7788);
}

#[test]
fn bad_pointers_are_efault() {
    let (mm, _) = new_mm();
    let mut buf = [0u8; 8];
    assert_eq!(mm.copy_in(0, &mut buf), Err(Errno::EFAULT));
    assert_eq!(mm.copy_in(u64::MAX - 3, &mut buf), Err(Errno::EFAULT));
    assert_eq!(mm.copy_out(0xdead_0000, &buf), Err(Errno::EFAULT));
    let a = mm.mmap(0, PAGE, PROT_READ, ANON, None).unwrap();
    assert_eq!(mm.copy_out(a, &buf), Err(Errno::EFAULT), "read-only page");
    mm.copy_in(a, &mut buf).unwrap();
    // A copy running off the end of a mapping fails as a whole.
    assert_eq!(mm.copy_in(a + PAGE - 4, &mut buf), Err(Errno::EFAULT));
    let n = mm.mmap(0, PAGE, PROT_NONE, ANON, None).unwrap();
    assert_eq!(
        mm.copy_in(n, &mut buf),
        Err(Errno::EFAULT),
        "PROT_NONE page"
    );
    assert_eq!(mm.read_iovecs(a, 5000), Err(Errno::EINVAL));
}

#[test]
fn c_strings() {
    let (mm, _) = new_mm();
    let a = mm.mmap(0, 2 * PAGE, RW, ANON, None).unwrap();
    // A string ending exactly at the end of the mapping (no NUL) is EFAULT, one with a
    // NUL right before the end works.
    let end = a + 2 * PAGE;
    mm.copy_out(end - 4, b"abc\0").unwrap();
    assert_eq!(mm.read_c_string(end - 4, 100).unwrap(), b"abc");
    mm.copy_out(end - 4, b"abcd").unwrap();
    assert_eq!(mm.read_c_string(end - 4, 100), Err(Errno::EFAULT));
    mm.copy_out(a, b"0123456789\0").unwrap();
    assert_eq!(mm.read_c_string(a, 10).unwrap(), b"0123456789");
    assert_eq!(mm.read_c_string(a, 9), Err(Errno::ENAMETOOLONG));
}

/// `munmap(0, 0x11000)` over a page at 0x10000 (the lowest user address): Linux unmaps
/// it and returns 0. The platform never sees the part below its range, and when the
/// platform does fail the VMAs stay: the Sentry's view and the platform's agree.
#[test]
fn munmap_from_zero_and_platform_failures_keep_views_equal() {
    let (mm, fake) = new_mm();
    let a = mm.mmap(0x10000, PAGE, RW, ANON | MAP_FIXED, None).unwrap();
    assert_eq!(a, 0x10000);
    mm.copy_out(a, &[7]).unwrap();
    assert!(fake.prot(a).is_some());
    assert_eq!(mm.munmap(0, 0x11000), Ok(()));
    assert!(mm.vmas().is_empty());
    assert!(fake.prot(a).is_none(), "gone from the platform too");

    let b = mm.mmap(0, 2 * PAGE, RW, ANON, None).unwrap();
    mm.copy_out(b, &[1u8; 2 * PAGE as usize]).unwrap();
    fake.fail_unmap
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(mm.munmap(b, PAGE), Err(Errno::EINVAL));
    assert_eq!(
        mm.vmas().len(),
        1,
        "the VMA stays while the page stays mapped"
    );
    assert!(fake.prot(b).is_some());
    let mut byte = [0u8];
    mm.copy_in(b, &mut byte).unwrap();
    assert_eq!(byte, [1]);
}

#[test]
fn munmap_and_mprotect_split_vmas() {
    let (mm, fake) = new_mm();
    let a = mm.mmap(0, 4 * PAGE, RW, ANON, None).unwrap();
    mm.copy_out(a, &[1u8; 4 * PAGE as usize]).unwrap();
    mm.munmap(a + PAGE, PAGE).unwrap();
    let v = mm.vmas();
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].start, v[0].end), (a, a + PAGE));
    assert_eq!((v[1].start, v[1].end), (a + 2 * PAGE, a + 4 * PAGE));
    assert!(
        fake.prot(a + PAGE).is_none(),
        "unmapped in the address space"
    );
    assert_eq!(mm.copy_in(a + PAGE, &mut [0u8; 1]), Err(Errno::EFAULT));

    mm.mprotect(a + 3 * PAGE, PAGE, PROT_READ).unwrap();
    let v = mm.vmas();
    assert_eq!(v.len(), 3);
    assert_eq!(v[2].prot, PROT_READ);
    assert_eq!(fake.prot(a + 3 * PAGE), Some(Protection::READ));
    assert_eq!(mm.copy_out(a + 3 * PAGE, &[0]), Err(Errno::EFAULT));
    // Back to RW: the VMAs merge again.
    mm.mprotect(a + 3 * PAGE, PAGE, RW).unwrap();
    assert_eq!(mm.vmas().len(), 2);
    assert_eq!(
        mm.mprotect(a + PAGE, PAGE, PROT_READ),
        Err(Errno::ENOMEM),
        "hole"
    );
    assert_eq!(mm.mprotect(a + 1, PAGE, PROT_READ), Err(Errno::EINVAL));
    // Contents survive.
    let mut b = [0u8; 1];
    mm.copy_in(a + 3 * PAGE, &mut b).unwrap();
    assert_eq!(b, [1]);
}

#[test]
fn faults_populate_or_report() {
    let (mm, fake) = new_mm();
    let a = mm.mmap(0, 64 * PAGE, RW, ANON, None).unwrap();
    assert_eq!(
        mm.handle_fault(a + 20 * PAGE + 5, AccessType::UNKNOWN),
        Ok(true)
    );
    assert!(fake.prot(a + 20 * PAGE).is_some());
    // The fault maps a whole aligned chunk around the address.
    assert!(mm.resident_pages() > 1 && mm.resident_pages() <= ANON_FAULT_CHUNK_PAGES);
    // A second fault on a mapped page changes nothing.
    assert_eq!(
        mm.handle_fault(a + 20 * PAGE, AccessType::UNKNOWN),
        Ok(false)
    );
    assert_eq!(
        mm.handle_fault(0x1000_0000_0000, AccessType::UNKNOWN),
        Err(FaultSignal {
            signo: SIGSEGV,
            code: SEGV_MAPERR
        })
    );
    let r = mm.mmap(0, PAGE, PROT_READ, ANON, None).unwrap();
    let w = AccessType {
        write: true,
        ..AccessType::UNKNOWN
    };
    assert_eq!(
        mm.handle_fault(r, w),
        Err(FaultSignal {
            signo: SIGSEGV,
            code: SEGV_ACCERR
        })
    );
    let n = mm.mmap(0, PAGE, PROT_NONE, ANON, None).unwrap();
    assert_eq!(
        mm.handle_fault(n, AccessType::UNKNOWN),
        Err(FaultSignal {
            signo: SIGSEGV,
            code: SEGV_ACCERR
        })
    );
}

#[test]
fn brk_grows_and_shrinks() {
    let (mm, _) = new_mm();
    mm.set_brk_start(0x60_1234);
    let start = mm.current_brk();
    assert_eq!(start, 0x60_2000);
    assert_eq!(mm.brk(0), start, "query");
    assert_eq!(mm.brk(start + 3 * PAGE + 7), start + 3 * PAGE + 7);
    mm.copy_out(start + 3 * PAGE, &[9]).unwrap();
    assert_eq!(mm.brk(start + PAGE), start + PAGE);
    assert_eq!(mm.copy_out(start + 3 * PAGE, &[9]), Err(Errno::EFAULT));
    assert_eq!(
        mm.brk(start - PAGE),
        start + PAGE,
        "below the start is refused"
    );
    assert_eq!(mm.vmas()[0].name, b"[heap]");
}

#[test]
fn mremap_grows_moves_and_keeps_contents() {
    let (mm, _) = new_mm();
    let a = mm.mmap(0, 2 * PAGE, RW, ANON, None).unwrap();
    mm.copy_out(a + PAGE, b"keep").unwrap();
    // Block growth in place.
    mm.mmap(a + 2 * PAGE, PAGE, RW, ANON | MAP_FIXED, None)
        .unwrap();
    assert_eq!(mm.mremap(a, 2 * PAGE, 4 * PAGE, 0, 0), Err(Errno::ENOMEM));
    let b = mm.mremap(a, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE, 0).unwrap();
    assert_ne!(a, b);
    let mut buf = [0u8; 4];
    mm.copy_in(b + PAGE, &mut buf).unwrap();
    assert_eq!(&buf, b"keep");
    assert_eq!(
        mm.copy_in(a, &mut buf),
        Err(Errno::EFAULT),
        "old range gone"
    );
    // Shrink in place.
    assert_eq!(mm.mremap(b, 4 * PAGE, PAGE, 0, 0), Ok(b));
    assert_eq!(mm.copy_in(b + PAGE, &mut buf), Err(Errno::EFAULT));
}

#[test]
fn madvise_dontneed_zeroes_and_mincore_reports() {
    let (mm, _) = new_mm();
    let a = mm.mmap(0, 2 * PAGE, RW, ANON, None).unwrap();
    mm.copy_out(a, b"x").unwrap();
    let core = mm.mincore(a, 2 * PAGE).unwrap();
    assert_eq!(core[0], 1);
    mm.madvise(a, 2 * PAGE, MADV_DONTNEED).unwrap();
    assert_eq!(mm.mincore(a, 2 * PAGE).unwrap(), vec![0, 0]);
    let mut b = [1u8];
    mm.copy_in(a, &mut b).unwrap();
    assert_eq!(b, [0]);
    assert_eq!(mm.mincore(0x1000_0000_0000, PAGE), Err(Errno::ENOMEM));
}

/// A file in memory for file-mapping tests.
#[derive(Debug)]
struct MemFile(Mutex<Vec<u8>>);

impl MappableFile for MemFile {
    fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let d = self.0.lock();
        let off = (off as usize).min(d.len());
        let n = buf.len().min(d.len() - off);
        buf[..n].copy_from_slice(&d[off..off + n]);
        Ok(n)
    }
    fn pwrite(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let mut d = self.0.lock();
        let end = off as usize + buf.len();
        if d.len() < end {
            d.resize(end, 0);
        }
        d[off as usize..end].copy_from_slice(buf);
        Ok(buf.len())
    }
    fn size(&self) -> Result<u64, Errno> {
        Ok(self.0.lock().len() as u64)
    }
    fn path(&self) -> Vec<u8> {
        b"/memfile".to_vec()
    }
}

#[test]
fn file_mappings_private_and_shared() {
    let (mm, fake) = new_mm();
    let data: Vec<u8> = (0..2 * PAGE + 100).map(|i| (i % 251) as u8).collect();
    let f: Arc<dyn MappableFile> = Arc::new(MemFile(Mutex::new(data.clone())));
    let p = mm
        .mmap(0, 3 * PAGE, RW, MAP_PRIVATE, Some((f.clone(), PAGE)))
        .unwrap();
    let mut buf = vec![0u8; 200];
    mm.copy_in(p, &mut buf).unwrap();
    assert_eq!(buf, data[PAGE as usize..PAGE as usize + 200]);
    // The rest of the last file page reads zeros; pages wholly past EOF do not exist.
    mm.copy_in(p + PAGE + 100, &mut buf[..10]).unwrap();
    assert_eq!(&buf[..10], &[0; 10]);
    assert_eq!(
        mm.handle_fault(p + 2 * PAGE, AccessType::UNKNOWN),
        Err(FaultSignal {
            signo: SIGBUS,
            code: BUS_ADRERR
        })
    );
    assert!(mm.copy_in(p + 2 * PAGE, &mut buf[..1]).is_err());
    mm.copy_out(p, b"private").unwrap();
    assert_eq!(f.pread(&mut buf[..7], PAGE).unwrap(), 7);
    assert_eq!(buf[..7], data[PAGE as usize..PAGE as usize + 7]);

    let s = mm
        .mmap(0, PAGE, RW, MAP_SHARED, Some((f.clone(), 0)))
        .unwrap();
    // A read fault maps a shared file page read-only (clean)...
    assert_eq!(mm.handle_fault(s, AccessType::UNKNOWN), Ok(true));
    assert_eq!(fake.prot(s).map(|p| p.write), Some(false));
    // ...the write fault marks it dirty and writable...
    assert_eq!(mm.handle_fault(s, AccessType::UNKNOWN), Ok(true));
    assert_eq!(fake.prot(s).map(|p| p.write), Some(true));
    mm.copy_out(s + 10, b"shared").unwrap();
    // ...and msync writes it back.
    mm.msync(s, PAGE, MS_SYNC).unwrap();
    f.pread(&mut buf[..6], 10).unwrap();
    assert_eq!(&buf[..6], b"shared");
    assert!(mm.vmas().iter().any(|v| v.name == b"/memfile" && v.shared));
}

#[test]
fn mmap_argument_errors() {
    let (mm, _) = new_mm();
    assert_eq!(mm.mmap(0, 0, RW, ANON, None), Err(Errno::EINVAL));
    assert_eq!(
        mm.mmap(0, PAGE, RW, MAP_ANONYMOUS, None),
        Err(Errno::EINVAL),
        "neither shared nor private"
    );
    assert_eq!(mm.mmap(0, PAGE, RW, MAP_PRIVATE, None), Err(Errno::EBADF));
    assert_eq!(
        mm.mmap(1, PAGE, RW, ANON | MAP_FIXED, None),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mm.mmap(0, u64::MAX - 10, RW, ANON, None),
        Err(Errno::ENOMEM)
    );
    let a = mm.mmap(0, PAGE, RW, ANON, None).unwrap();
    assert_eq!(
        mm.mmap(a, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, None),
        Err(Errno::EEXIST)
    );
    // A hint that is free is honoured.
    let h = 0x2000_0000;
    assert_eq!(mm.mmap(h, PAGE, RW, ANON, None), Ok(h));
    assert_eq!(mm.munmap(a + 1, PAGE), Err(Errno::EINVAL));
}

#[test]
fn fork_shares_pages_copy_on_write() {
    let (parent, pas) = new_mm();
    let a = parent.mmap(0, 2 * PAGE, RW, ANON, None).unwrap();
    let s = parent
        .mmap(0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, None)
        .unwrap();
    parent.copy_out(a, b"AAAA").unwrap();
    parent.copy_out(s, b"S").unwrap();
    let cas = Arc::new(super::testutil::FakeAs::default());
    let child = parent.fork(cas.clone()).unwrap();
    // Both map the private page read-only now, the shared page writable.
    assert_eq!(pas.prot(a).map(|p| p.write), Some(false));
    assert_eq!(cas.prot(a).map(|p| p.write), Some(false));
    assert_eq!(cas.prot(s).map(|p| p.write), Some(true));
    // A write fault in the child copies the page; the parent keeps its data.
    assert_eq!(
        child.handle_fault(
            a,
            AccessType {
                write: true,
                ..AccessType::UNKNOWN
            }
        ),
        Ok(true)
    );
    child.copy_out(a, b"BBBB").unwrap();
    let mut buf = [0u8; 4];
    parent.copy_in(a, &mut buf).unwrap();
    assert_eq!(&buf, b"AAAA");
    // The parent writes through the copy helper (breaking COW its side too).
    parent.copy_out(a, b"CCCC").unwrap();
    child.copy_in(a, &mut buf).unwrap();
    assert_eq!(&buf, b"BBBB");
    // Shared memory stays shared.
    child.copy_out(s, b"T").unwrap();
    parent.copy_in(s, &mut buf[..1]).unwrap();
    assert_eq!(buf[0], b'T');
    assert_eq!(parent.vmas(), child.vmas());
}

#[test]
fn map_32bit_lands_below_2gib() {
    let (mm, _) = new_mm();
    let a = mm.mmap(0, 3 * PAGE, RW, ANON | MAP_32BIT, None).unwrap();
    assert!((1 << 30..(2 << 30) - 3 * PAGE + 1).contains(&a), "{a:#x}");
    let b = mm.mmap(0, PAGE, RW, ANON | MAP_32BIT, None).unwrap();
    assert_eq!(b, a + 3 * PAGE, "next free slot");
    // MAP_POPULATE maps everything at once.
    let p = mm.mmap(0, 4 * PAGE, RW, ANON | MAP_POPULATE, None).unwrap();
    assert_eq!(mm.mincore(p, 4 * PAGE).unwrap(), vec![1; 4]);
}
