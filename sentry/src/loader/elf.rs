//! Mapping an ELF image's `PT_LOAD` segments into a memory manager.

use std::sync::Arc;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::Elf;
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{PT_INTERP, PT_LOAD, PT_PHDR, ProgramHeader};
use linux_abi::Errno;
use linux_abi::flags::mm::{
    MAP_ANONYMOUS, MAP_PRIVATE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE,
};

use super::read_full;
use crate::mm::{Backing, MappableFile, MemoryManager, PAGE};

/// Where a position-independent main program is loaded (Linux's `ELF_ET_DYN_BASE`
/// without randomization).
pub const PIE_BASE: u64 = 0x5555_5555_4000;
/// The most program headers accepted.
const MAX_PHNUM: usize = 256;
/// The longest `PT_INTERP` path accepted.
const MAX_INTERP_LEN: u64 = 4096;

/// What the loader learned from mapping one ELF image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfInfo {
    /// Load bias (0 for `ET_EXEC`).
    pub bias: u64,
    /// Entry point (biased).
    pub entry: u64,
    /// Address of the program headers in memory (`AT_PHDR`), 0 if not mapped.
    pub phdr: u64,
    /// Number of program headers.
    pub phnum: u64,
    /// End of the highest segment (start of the heap).
    pub end: u64,
    /// Linux's `end_data - start_data`: from the start of the highest segment to the
    /// highest end of file contents (counted with the heap against `RLIMIT_DATA`).
    pub data_size: u64,
    /// The `PT_INTERP` path, if any (without the NUL).
    pub interp: Option<Vec<u8>>,
}

fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

fn page_up(a: u64) -> Result<u64, Errno> {
    a.checked_add(PAGE - 1).map(page_down).ok_or(Errno::ENOEXEC)
}

fn prot_of(ph: &ProgramHeader) -> u32 {
    (if ph.is_read() { PROT_READ } else { 0 })
        | (if ph.is_write() { PROT_WRITE } else { 0 })
        | (if ph.is_executable() { PROT_EXEC } else { 0 })
}

/// Maps the ELF image `file` into `mm`. An `ET_DYN` main program goes to `PIE_BASE`;
/// an interpreter (`is_interp`) goes wherever the memory manager finds room.
pub fn load_elf(
    mm: &MemoryManager,
    file: &Arc<dyn MappableFile>,
    is_interp: bool,
) -> Result<ElfInfo, Errno> {
    let mut hbuf = [0u8; 64];
    if read_full(file.as_ref(), &mut hbuf, 0)? < hbuf.len() {
        return Err(Errno::ENOEXEC);
    }
    let header = Elf::parse_header(&hbuf).map_err(|_| Errno::ENOEXEC)?;
    if header.e_ident[4] != 2 || header.e_ident[5] != 1 || header.e_machine != EM_X86_64 {
        return Err(Errno::ENOEXEC);
    }
    if header.e_type != ET_EXEC && header.e_type != ET_DYN {
        return Err(Errno::ENOEXEC);
    }
    let phnum = usize::from(header.e_phnum);
    if phnum == 0 || phnum > MAX_PHNUM || usize::from(header.e_phentsize) != 56 {
        return Err(Errno::ENOEXEC);
    }
    let mut pbuf = vec![0u8; phnum * 56];
    if read_full(file.as_ref(), &mut pbuf, header.e_phoff)? < pbuf.len() {
        return Err(Errno::ENOEXEC);
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(&pbuf, 0, phnum, ctx).map_err(|_| Errno::ENOEXEC)?;
    let loads: Vec<&ProgramHeader> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    if loads.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let mut interp = None;
    if let Some(ip) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        if is_interp || ip.p_filesz < 2 || ip.p_filesz > MAX_INTERP_LEN {
            return Err(Errno::ENOEXEC);
        }
        let mut path = vec![0u8; ip.p_filesz as usize];
        if read_full(file.as_ref(), &mut path, ip.p_offset)? < path.len() {
            return Err(Errno::ENOEXEC);
        }
        let n = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        path.truncate(n);
        interp = Some(path);
    }

    let min_vaddr = loads
        .iter()
        .map(|p| page_down(p.p_vaddr))
        .min()
        .unwrap_or(0);
    let mut max_vaddr = 0u64;
    for p in &loads {
        if p.p_filesz > p.p_memsz || p.p_vaddr % PAGE != p.p_offset % PAGE {
            return Err(Errno::ENOEXEC);
        }
        let end = p.p_vaddr.checked_add(p.p_memsz).ok_or(Errno::ENOEXEC)?;
        max_vaddr = max_vaddr.max(page_up(end)?);
    }
    let span = max_vaddr
        .checked_sub(min_vaddr)
        .filter(|&s| s > 0)
        .ok_or(Errno::ENOEXEC)?;
    let bias = if header.e_type == ET_EXEC {
        0
    } else if !is_interp && min_vaddr == 0 {
        PIE_BASE
    } else {
        // Reserve the whole span so that segment gaps stay unusable, like Linux.
        let base = mm.mmap(0, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, None)?;
        base.checked_sub(min_vaddr).ok_or(Errno::ENOMEM)?
    };

    let mut end = 0u64;
    let (mut start_data, mut end_data) = (0u64, 0u64);
    for p in &loads {
        let prot = prot_of(p);
        let vaddr = bias.checked_add(p.p_vaddr).ok_or(Errno::ENOEXEC)?;
        let map_start = page_down(vaddr);
        let file_end = vaddr.checked_add(p.p_filesz).ok_or(Errno::ENOEXEC)?;
        let mem_end = vaddr.checked_add(p.p_memsz).ok_or(Errno::ENOEXEC)?;
        if p.p_filesz > 0 {
            let backing = Backing::File {
                file: file.clone(),
                offset: page_down(p.p_offset),
            };
            mm.map_fixed(
                map_start,
                page_up(file_end)? - map_start,
                prot,
                false,
                backing,
                None,
            )?;
        }
        if p.p_memsz > p.p_filesz {
            let zero_end = page_up(file_end)?;
            if p.p_filesz > 0 && file_end < zero_end {
                // The rest of the last file page is .bss (and, like Linux, zero up to the
                // page end: ld.so's early allocator uses the bytes after `_end`).
                let zeros = vec![0u8; (zero_end - file_end) as usize];
                mm.copy_out_force(file_end, &zeros)?;
            }
            let anon_start = if p.p_filesz > 0 {
                page_up(file_end)?
            } else {
                page_down(vaddr)
            };
            let anon_end = page_up(mem_end)?;
            if anon_end > anon_start {
                mm.map_fixed(
                    anon_start,
                    anon_end - anon_start,
                    prot,
                    false,
                    Backing::Anonymous,
                    None,
                )?;
            }
        }
        end = end.max(mem_end);
        start_data = start_data.max(vaddr);
        end_data = end_data.max(file_end);
    }

    tracing::debug!(
        path = %String::from_utf8_lossy(&file.path()),
        bias = format_args!("{bias:#x}"),
        entry = format_args!("{:#x}", bias.wrapping_add(header.e_entry)),
        "loaded ELF image"
    );
    let phdr = match phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        Some(p) => bias.wrapping_add(p.p_vaddr),
        None => loads
            .iter()
            .find(|p| {
                p.p_offset <= header.e_phoff
                    && header.e_phoff < p.p_offset.saturating_add(p.p_filesz)
            })
            .map_or(0, |p| {
                bias.wrapping_add(p.p_vaddr)
                    .wrapping_add(header.e_phoff - p.p_offset)
            }),
    };
    Ok(ElfInfo {
        bias,
        entry: bias.checked_add(header.e_entry).ok_or(Errno::ENOEXEC)?,
        phdr,
        phnum: phnum as u64,
        end,
        data_size: end_data.saturating_sub(start_data),
        interp,
    })
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::mm::testutil::new_mm;

    /// A file held in memory.
    #[derive(Debug)]
    struct Bytes(Mutex<Vec<u8>>);

    impl MappableFile for Bytes {
        fn pread(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
            let d = self.0.lock();
            let off = usize::try_from(off).unwrap_or(usize::MAX).min(d.len());
            let n = buf.len().min(d.len() - off);
            buf[..n].copy_from_slice(&d[off..off + n]);
            Ok(n)
        }
        fn pwrite(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
            Err(Errno::EBADF)
        }
        fn size(&self) -> Result<u64, Errno> {
            Ok(self.0.lock().len() as u64)
        }
        fn path(&self) -> Vec<u8> {
            b"/test".to_vec()
        }
    }

    fn file(b: Vec<u8>) -> Arc<dyn MappableFile> {
        Arc::new(Bytes(Mutex::new(b)))
    }

    #[test]
    fn loads_a_host_pie_and_reports_its_interpreter() {
        let Ok(bytes) = std::fs::read("/bin/true") else {
            test_require::skip("tools", "no /bin/true");
            return;
        };
        let header = Elf::parse_header(&bytes).unwrap();
        let (mm, _) = new_mm();
        let info = load_elf(&mm, &file(bytes.clone()), false).unwrap();
        if header.e_type == ET_DYN {
            assert_eq!(info.bias, PIE_BASE);
        }
        assert_eq!(info.entry, info.bias + header.e_entry);
        assert!(
            info.interp
                .as_deref()
                .is_some_and(|p| p.starts_with(b"/lib"))
        );
        // The first page of the image is the ELF header, read from the file on demand.
        let mut magic = [0u8; 4];
        mm.copy_in(info.bias + loads_min(&bytes), &mut magic)
            .unwrap();
        assert_eq!(&magic, b"\x7fELF");
        assert!(
            mm.vmas()
                .iter()
                .any(|v| v.name == b"/test" && v.prot & PROT_EXEC != 0)
        );
    }

    fn loads_min(bytes: &[u8]) -> u64 {
        let h = Elf::parse_header(bytes).unwrap();
        let ctx = Ctx::new(Container::Big, Endian::Little);
        let ph = ProgramHeader::parse(bytes, h.e_phoff as usize, h.e_phnum as usize, ctx).unwrap();
        ph.iter()
            .filter(|p| p.p_type == PT_LOAD)
            .map(|p| page_down(p.p_vaddr))
            .min()
            .unwrap()
    }

    #[test]
    fn corrupt_images_are_enoexec_not_panics() {
        let (mm, _) = new_mm();
        assert_eq!(
            load_elf(&mm, &file(b"\x7fELF".to_vec()), false),
            Err(Errno::ENOEXEC)
        );
        assert_eq!(
            load_elf(&mm, &file(vec![0; 64]), false),
            Err(Errno::ENOEXEC)
        );
        let Ok(good) = std::fs::read("/bin/true") else {
            return;
        };
        // Wrong machine.
        let mut b = good.clone();
        b[18] = 3;
        assert_eq!(load_elf(&mm, &file(b), false), Err(Errno::ENOEXEC));
        // Program headers past the end of the file.
        let mut b = good.clone();
        b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(load_elf(&mm, &file(b), false), Err(Errno::ENOEXEC));
        // Every byte of the program headers flipped in turn: errors are fine, panics are not.
        let h = Elf::parse_header(&good).unwrap();
        let start = h.e_phoff as usize;
        let end = start + usize::from(h.e_phnum) * 56;
        for i in (start..end).step_by(3) {
            let mut b = good.clone();
            b[i] ^= 0xa5;
            let (mm, _) = new_mm();
            let _ = load_elf(&mm, &file(b), false);
        }
    }
}
