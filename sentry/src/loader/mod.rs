//! The program loader: `#!` scripts and ELF executables (static, static-PIE, and dynamic
//! with a `PT_INTERP` interpreter), and the initial stack.
//!
//! Files are opened through the kernel's [`crate::kernel::ExecSource`] (the VFS) and read
//! with [`MappableFile::pread`]; segments become private file mappings of the memory
//! manager, so their pages are read on first touch. ELF headers are parsed with `goblin`.

mod elf;
mod stack;

use std::sync::Arc;

use linux_abi::Errno;

use crate::kernel::Task;
use crate::mm::{MappableFile, MemoryManager};

pub use elf::load_elf;
pub use stack::{AuxvInput, MAX_ARG_BYTES, StackLayout, build_stack};

/// The most nested `#!` interpreters (Linux allows 4 rewrites too).
pub const MAX_INTERP_DEPTH: usize = 4;
/// The most bytes of a `#!` line that are read.
pub const BINPRM_BUF_SIZE: usize = 256;

/// The result of loading a program into a fresh memory manager.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// The first instruction (the interpreter's entry for dynamic programs).
    pub entry: u64,
    /// The initial stack pointer (points at `argc`).
    pub stack_pointer: u64,
    /// The task name derived from the executable path.
    pub comm: Vec<u8>,
    /// Where the stack block (argc, argv, envp, auxv) lies.
    pub stack: StackLayout,
    /// The ELF file that was loaded (for `/proc/<pid>/exe`).
    pub exe: Option<crate::fs::VfsPath>,
}

/// Reads all of `buf` at `off` unless EOF comes first; returns the bytes read.
pub(crate) fn read_full(file: &dyn MappableFile, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        let pos = off.checked_add(done as u64).ok_or(Errno::ENOEXEC)?;
        let n = file.pread(&mut buf[done..], pos)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Parses a `#!` line: the interpreter path and at most one argument.
pub fn parse_shebang(head: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), Errno> {
    let rest = head.strip_prefix(b"#!").ok_or(Errno::ENOEXEC)?;
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(n) => &rest[..n],
        None if head.len() >= BINPRM_BUF_SIZE => return Err(Errno::ENOEXEC),
        None => rest,
    };
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let line: Vec<u8> = line.iter().copied().skip_while(is_ws).collect();
    let end = line.iter().rposition(|b| !is_ws(b)).map_or(0, |p| p + 1);
    let line = &line[..end];
    if line.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let split = line.iter().position(is_ws);
    match split {
        None => Ok((line.to_vec(), None)),
        Some(p) => {
            let arg: Vec<u8> = line[p..].iter().copied().skip_while(is_ws).collect();
            Ok((line[..p].to_vec(), (!arg.is_empty()).then_some(arg)))
        }
    }
}

/// Loads the program at `path` into `mm` (which must be fresh) for task `t`: resolves
/// `#!` lines, maps the ELF image and its interpreter, and builds the initial stack.
pub fn load(
    t: &Task,
    mm: &Arc<MemoryManager>,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> Result<LoadedImage, Errno> {
    let source = t.kernel().exec_source();
    let execfn = path.to_vec();
    let mut path = path.to_vec();
    for _ in 0..=MAX_INTERP_DEPTH {
        let image = source.open_exec(t, &path)?;
        let file = image.file;
        let mut head = [0u8; BINPRM_BUF_SIZE];
        let n = read_full(file.as_ref(), &mut head, 0)?;
        let head = &head[..n];
        if head.starts_with(b"#!") {
            let (interp, arg) = parse_shebang(head)?;
            let mut new_argv = vec![interp.clone()];
            new_argv.extend(arg);
            new_argv.push(path.clone());
            new_argv.extend(argv.into_iter().skip(1));
            argv = new_argv;
            path = interp;
            continue;
        }
        if !head.starts_with(b"\x7fELF") {
            return Err(Errno::ENOEXEC);
        }
        let main = load_elf(mm, &file, false)?;
        let interp = match &main.interp {
            Some(ip) => {
                let ifile = source.open_exec(t, ip).inspect_err(|&e| {
                    tracing::info!(interp = %String::from_utf8_lossy(ip), "cannot open interpreter: {e}");
                })?;
                let info = load_elf(mm, &ifile.file, true)?;
                if info.interp.is_some() {
                    return Err(Errno::ELIBBAD);
                }
                Some(info)
            }
            None => None,
        };
        mm.set_brk_start(main.end);
        mm.set_data_size(main.data_size);
        let creds = t.creds();
        let input = AuxvInput {
            phdr: main.phdr,
            phnum: main.phnum,
            base: interp.as_ref().map_or(0, |i| i.bias),
            entry: main.entry,
            uid: creds.uid,
            euid: creds.euid,
            gid: creds.gid,
            egid: creds.egid,
        };
        let layout = build_stack(mm, &argv, &envp, &execfn, &input)?;
        let comm = execfn
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or(&execfn)
            .to_vec();
        return Ok(LoadedImage {
            entry: interp.as_ref().map_or(main.entry, |i| i.entry),
            stack_pointer: layout.sp,
            comm,
            stack: layout,
            exe: image.path,
        });
    }
    Err(Errno::ELOOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_forms() {
        assert_eq!(
            parse_shebang(b"#!/bin/sh\necho").unwrap(),
            (b"/bin/sh".to_vec(), None)
        );
        assert_eq!(
            parse_shebang(b"#! /usr/bin/env  python3 -u \n").unwrap(),
            (b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec()))
        );
        assert_eq!(parse_shebang(b"#!   \n"), Err(Errno::ENOEXEC));
        assert_eq!(parse_shebang(b"#!/bin/sh"), Ok((b"/bin/sh".to_vec(), None)));
    }
}
