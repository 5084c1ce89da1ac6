//! The seams between the kernel and the VFS: open files as mappable files, executables
//! opened through the VFS, and the process data procfs shows ([`ProcSource`]).

use std::sync::Arc;

use linux_abi::Errno;

use super::task::{ExecImage, ExecSource, Task};
use super::{CAP_SYS_ADMIN, CAP_SYS_RESOURCE, Kernel};
use crate::fs::proc::ProcInfo;
use crate::fs::{Caller, FdTable, FsContext, FsCred, OpenFile, ProcSource, VfsPath};
use crate::mm::MappableFile;
use std::sync::atomic::Ordering;

impl MappableFile for OpenFile {
    fn noexec(&self) -> bool {
        self.vfs_path().mount.noexec()
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        OpenFile::pread(self, &Caller::KERNEL, buf, offset)
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        OpenFile::pwrite(self, &Caller::KERNEL, buf, offset)
    }

    fn size(&self) -> Result<u64, Errno> {
        Ok(self.stat()?.st_size.max(0) as u64)
    }

    fn path(&self) -> Vec<u8> {
        OpenFile::path(self)
    }

    fn shared_page(&self, offset: u64) -> Option<Result<Arc<crate::mm::Frame>, Errno>> {
        self.ops().shared_page(offset)
    }

    fn writeback_shared(&self, offset: u64, len: u64) -> Result<(), Errno> {
        self.ops().writeback_shared(offset, len)
    }
}

/// The filesystem credentials of `t` (fsuid, fsgid, supplementary groups).
pub(crate) fn fs_cred(t: &Task) -> FsCred {
    let c = t.creds();
    FsCred {
        uid: c.fsuid,
        gid: c.fsgid,
        groups: c.groups,
        caps: c.cap_effective,
        caller: t.caller(),
    }
}

/// Opens executables through the sandbox VFS with the task's root, cwd and credentials.
#[derive(Debug, Default)]
pub struct VfsExec;

impl ExecSource for VfsExec {
    fn open_exec(&self, t: &Task, path: &[u8]) -> Result<ExecImage, Errno> {
        let f = t
            .kernel()
            .vfs()
            .open_exec(&t.fs_context(), &fs_cred(t), path)?;
        let vpath = f.vfs_path().clone();
        Ok(ExecImage {
            file: f,
            path: Some(vpath),
        })
    }
}

/// Reads `[start, end)` of the task's memory (at most 64 KiB), for cmdline and environ.
fn read_block(t: &Task, (start, end): (u64, u64)) -> Vec<u8> {
    let len = end.saturating_sub(start).min(64 << 10) as usize;
    let mut buf = vec![0u8; len];
    match t.mm().copy_in(start, &mut buf) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

impl ProcSource for Kernel {
    fn memory_limit(&self) -> Option<u64> {
        Kernel::memory_limit(self)
    }

    fn memory_usage(&self) -> u64 {
        Kernel::memory_usage(self)
    }

    fn net_file(&self, name: &[u8]) -> Option<Vec<u8>> {
        crate::net::procnet::render(self.net(), name)
    }

    fn process_object(&self, pid: i32) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        let tg: Arc<dyn std::any::Any + Send + Sync> = self.thread_group(pid)?;
        Some(tg)
    }

    fn sysvipc_file(&self, name: &[u8]) -> Option<Vec<u8>> {
        let n = self.ipc().lock();
        let text = match name {
            b"msg" => n.proc_msg(),
            b"sem" => n.proc_sem(),
            b"shm" => n.proc_shm(),
            _ => return None,
        };
        Some(text.into_bytes())
    }

    fn pids(&self) -> Vec<i32> {
        Kernel::pids(self)
    }

    fn process(&self, pid: i32) -> Option<ProcInfo> {
        let tg = self.thread_group(pid)?;
        let ticks = |d: std::time::Duration| (d.as_millis() / 10) as u64;
        let start_ticks = ticks(
            tg.start_time()
                .saturating_duration_since(self.boot_instant()),
        );
        let limits: Vec<(u64, u64)> = (0..super::RLIM_NLIMITS)
            .filter_map(|r| tg.rlimit(r))
            .map(|l| (l.cur, l.max))
            .collect();
        let mut ignored = 0u64;
        let mut caught = 0u64;
        for sig in 1..=64 {
            let act = tg.action(sig);
            if act.handler == super::signal::SIG_IGN {
                ignored |= super::signal::sig_bit(sig);
            } else if act.has_handler() {
                caught |= super::signal::sig_bit(sig);
            }
        }
        let tasks = tg.tasks();
        let Some(leader) = tasks
            .iter()
            .find(|t| t.tid() == pid)
            .or(tasks.first())
            .cloned()
        else {
            // A zombie: only its ids and status remain.
            return Some(ProcInfo {
                pid,
                ppid: tg.ppid(),
                pgid: tg.pgid(),
                sid: tg.sid(),
                state: 'Z',
                start_ticks,
                // A zombie keeps the times of its threads (and reaped children).
                utime_ticks: ticks(tg.cpu_times().user),
                stime_ticks: ticks(tg.cpu_times().sys),
                cutime_ticks: ticks(tg.children_cpu_times().user),
                cstime_ticks: ticks(tg.children_cpu_times().sys),
                limits,
                tpgid: -1,
                ..ProcInfo::default()
            });
        };
        let c = leader.creds();
        let term = self.terminals().of(pid);
        let prog = leader.program();
        let times = tg.cpu_times();
        let children = tg.children_cpu_times();
        let mm = leader.mm();
        // A thread running application code or a system call that is not asleep makes
        // the process `R` (the process asking is one: it is reading this); when every
        // thread sleeps in a blocking call it is `S`, as on Linux.
        let state = if tg.is_dead() {
            'Z'
        } else if tg.job().stopped {
            'T'
        } else if tasks.iter().any(|t| t.is_running()) {
            'R'
        } else {
            'S'
        };
        Some(ProcInfo {
            pid,
            ppid: tg.ppid(),
            pgid: tg.pgid(),
            sid: tg.sid(),
            tids: tasks.iter().map(|t| t.tid()).collect(),
            comm: leader.comm(),
            state,
            uids: [c.uid, c.euid, c.suid, c.fsuid],
            gids: [c.gid, c.egid, c.sgid, c.fsgid],
            groups: c.groups.clone(),
            cmdline: read_block(&leader, prog.args),
            environ: read_block(&leader, prog.env),
            vm_size: mm.virtual_size(),
            vm_rss: mm.resident_pages() * crate::mm::PAGE,
            start_ticks,
            utime_ticks: ticks(times.user),
            stime_ticks: ticks(times.sys),
            cutime_ticks: ticks(children.user),
            cstime_ticks: ticks(children.sys),
            thread_ticks: tasks
                .iter()
                .map(|t| {
                    let c = t.cpu_times();
                    (t.tid(), ticks(c.user), ticks(c.sys))
                })
                .collect(),
            limits,
            sig_pending: leader.pending().set(),
            sig_shared: tg.shared_pending_set(),
            sig_blocked: leader.sigmask(),
            sig_ignored: ignored,
            sig_caught: caught,
            tty_nr: term.as_ref().map_or(0, |t| t.device_number()),
            tpgid: term.and_then(|t| t.foreground()).unwrap_or(-1),
            caps: [
                c.cap_inheritable,
                c.cap_permitted,
                c.cap_effective,
                c.cap_bounding,
                c.cap_ambient,
            ],
            no_new_privs: tg.no_new_privs.load(std::sync::atomic::Ordering::Relaxed),
            umask: leader.fs_context().umask(),
        })
    }

    fn maps(&self, pid: i32) -> Option<Vec<u8>> {
        let tg = self.thread_group(pid)?;
        let t = tg.tasks().into_iter().next()?;
        Some(
            t.mm()
                .vmas()
                .iter()
                .map(|v| v.maps_line())
                .collect::<String>()
                .into_bytes(),
        )
    }

    fn fd_table(&self, pid: i32) -> Option<Arc<FdTable>> {
        Some(self.thread_group(pid)?.tasks().first()?.fd_table())
    }

    fn fs_context(&self, pid: i32) -> Option<Arc<FsContext>> {
        Some(self.thread_group(pid)?.tasks().first()?.fs_context())
    }

    fn exe(&self, pid: i32) -> Option<VfsPath> {
        self.thread_group(pid)?.tasks().first()?.program().exe
    }

    fn boot_id(&self) -> String {
        self.boot_id.clone()
    }
    fn domainname(&self) -> String {
        Kernel::domainname(self)
    }
    fn hostname(&self) -> String {
        Kernel::hostname(self)
    }

    fn uptime(&self) -> f64 {
        self.boot_instant().elapsed().as_secs_f64()
    }

    fn sysctl(&self, name: &str) -> Option<String> {
        self.sysctls().get(name)
    }

    fn set_sysctl(&self, caller: &Caller, name: &str, value: &[u8]) -> Result<(), Errno> {
        // The file mode (0644) already kept out writers other than root; Linux also
        // wants CAP_SYS_ADMIN in the owning namespace for most of them.
        if let Some(t) = self.task(caller.tid)
            && !t.creds().has_cap(CAP_SYS_ADMIN)
            && !t.creds().has_cap(CAP_SYS_RESOURCE)
        {
            return Err(Errno::EPERM);
        }
        if name == "kernel/hostname" || name == "kernel/domainname" {
            // As Linux's proc_do_uts_string: the text up to a newline, at most 64
            // bytes (the rest is dropped), the same as sethostname/setdomainname.
            let text = value.split(|&b| b == b'\n').next().unwrap_or_default();
            let text = &text[..text.len().min(64)];
            let text = String::from_utf8_lossy(text).into_owned();
            if name == "kernel/hostname" {
                self.set_hostname(text);
            } else {
                self.set_domainname(text);
            }
            return Ok(());
        }
        self.sysctls().set(name, value)
    }

    fn oom_score_adj(&self, pid: i32) -> Option<i32> {
        let tg = self.thread_group(pid)?;
        Some(tg.oom_score_adj.load(Ordering::Relaxed))
    }

    fn set_oom_score_adj(&self, caller: &Caller, pid: i32, value: &[u8]) -> Result<(), Errno> {
        let text = std::str::from_utf8(value).map_err(|_| Errno::EINVAL)?;
        let v: i32 = text.trim().parse().map_err(|_| Errno::EINVAL)?;
        if !(-1000..=1000).contains(&v) {
            return Err(Errno::EINVAL);
        }
        let tg = self.thread_group(pid).ok_or(Errno::ESRCH)?;
        let privileged = self
            .task(caller.tid)
            .is_none_or(|t| t.creds().has_cap(CAP_SYS_RESOURCE));
        // As Linux: going below the floor needs CAP_SYS_RESOURCE, and a privileged
        // write moves the floor.
        if v < tg.oom_score_adj_min.load(Ordering::Relaxed) && !privileged {
            return Err(Errno::EACCES);
        }
        tg.oom_score_adj.store(v, Ordering::Relaxed);
        if privileged {
            tg.oom_score_adj_min.store(v, Ordering::Relaxed);
        }
        Ok(())
    }
}
