//! Process credentials (user and group ids) and the Linux rules for changing them.
//!
//! Capabilities follow Linux's model (capabilities(7)): five sets per task, the changes
//! that `setuid` and friends make to them (without `SECBIT_NO_SETUID_FIXUP`), the
//! transformation at `execve` (root gets its bounding and inheritable sets, others keep only
//! their ambient set), and checks that ask for a capability in the effective set. An OCI
//! container's process gets the sets of its spec.

use linux_abi::Errno;

/// The user and group ids of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Saved set-user-id.
    pub suid: u32,
    /// Filesystem user id.
    pub fsuid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Saved set-group-id.
    pub sgid: u32,
    /// Filesystem group id.
    pub fsgid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capability set: what permission checks consult.
    pub cap_effective: u64,
    /// Permitted capability set.
    pub cap_permitted: u64,
    /// Inheritable capability set.
    pub cap_inheritable: u64,
    /// Bounding set: what `execve` may grant.
    pub cap_bounding: u64,
    /// Ambient set: kept across `execve` of an unprivileged program.
    pub cap_ambient: u64,
    /// `PR_SET_KEEPCAPS`: the permitted set survives leaving uid 0 (cleared by `execve`).
    pub keep_caps: bool,
}

/// `CAP_CHOWN`: change owners and groups freely.
pub const CAP_CHOWN: u32 = 0;
/// `CAP_DAC_OVERRIDE`: bypass read, write and execute permission checks.
pub const CAP_DAC_OVERRIDE: u32 = 1;
/// `CAP_DAC_READ_SEARCH`: bypass read checks of files and search checks of directories.
pub const CAP_DAC_READ_SEARCH: u32 = 2;
/// `CAP_FOWNER`: act as the owner of any file (chmod, utimes, O_NOATIME, sticky dirs).
pub const CAP_FOWNER: u32 = 3;
/// `CAP_FSETID`: keep set-id bits on change; set S_ISGID without the group.
pub const CAP_FSETID: u32 = 4;
/// `CAP_KILL`: signal any process.
pub const CAP_KILL: u32 = 5;
/// `CAP_SETGID`: change group ids freely.
pub const CAP_SETGID: u32 = 6;
/// `CAP_SETUID`: change user ids freely.
pub const CAP_SETUID: u32 = 7;
/// `CAP_LEASE`: take leases on files one does not own.
pub const CAP_LEASE: u32 = 28;
/// `CAP_IPC_LOCK`: lock memory past `RLIMIT_MEMLOCK`.
pub const CAP_IPC_LOCK: u32 = 14;
/// `CAP_NET_BIND_SERVICE`: bind ports below 1024.
pub const CAP_NET_BIND_SERVICE: u32 = 10;
/// `CAP_SETPCAP`: change the bounding set, add to the inheritable set freely.
pub const CAP_SETPCAP: u32 = 8;
/// `CAP_MKNOD`: make device nodes.
pub const CAP_MKNOD: u32 = 27;
/// `CAP_SYS_PTRACE`: trace or inspect any process.
pub const CAP_SYS_PTRACE: u32 = 19;
/// `CAP_SYS_ADMIN`.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_SYS_NICE`.
pub const CAP_SYS_NICE: u32 = 23;
/// `CAP_SYS_RESOURCE`: exceed resource limits, lower `oom_score_adj`.
pub const CAP_SYS_RESOURCE: u32 = 24;

/// Every capability up to `CAP_CHECKPOINT_RESTORE` (40).
pub const CAP_FULL_SET: u64 = (1 << 41) - 1;
/// The capabilities tied to fsuid 0: chown, DAC, fowner, fsetid, immutable, mknod,
/// MAC override.
const CAP_FS_MASK: u64 = 0x1f | 1 << 9 | 1 << 27 | 1 << 32;
/// The highest capability number (`/proc/sys/kernel/cap_last_cap`).
pub const CAP_LAST_CAP: u32 = 40;

/// The capability names as `capabilities(7)` spells them, by number.
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of capability `name` (`CAP_NET_RAW`, any case); `None` if unknown.
pub fn cap_from_name(name: &str) -> Option<u32> {
    CAP_NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
}

/// `-1` as an id argument: "leave unchanged".
const KEEP: u32 = u32::MAX;
/// The most supplementary groups (`NGROUPS_MAX`).
pub const NGROUPS_MAX: usize = 65536;

impl Credentials {
    /// Credentials with every uid `uid`, every gid `gid` and no supplementary groups.
    pub fn new(uid: u32, gid: u32) -> Credentials {
        Credentials {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            groups: Vec::new(),
            cap_effective: if uid == 0 { CAP_FULL_SET } else { 0 },
            cap_permitted: if uid == 0 { CAP_FULL_SET } else { 0 },
            cap_inheritable: 0,
            cap_bounding: CAP_FULL_SET,
            cap_ambient: 0,
            keep_caps: false,
        }
    }

    /// The capability changes of a uid change from `old` (`cap_emulate_setxuid`): leaving
    /// uid 0 everywhere drops the permitted, effective and ambient sets (the permitted set
    /// stays with `keep_caps`); leaving euid 0 drops the effective set; gaining it back
    /// restores the effective set from the permitted one.
    fn fix_caps(&mut self, old: &Credentials) {
        let had_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
        let has_root = self.uid == 0 || self.euid == 0 || self.suid == 0;
        if had_root && !has_root {
            if !self.keep_caps {
                self.cap_permitted = 0;
            }
            self.cap_effective = 0;
            self.cap_ambient = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// `capset`: the permitted set can only shrink, the effective set stays within it, and
    /// the inheritable set may only gain what is permitted (everything bounded with
    /// `CAP_SETPCAP`); the ambient set is trimmed to the new sets.
    pub fn capset(
        &mut self,
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<(), Errno> {
        if permitted & !self.cap_permitted != 0 || effective & !permitted != 0 {
            return Err(Errno::EPERM);
        }
        let allowed = if self.has_cap(CAP_SETPCAP) {
            self.cap_bounding
        } else {
            self.cap_permitted
        };
        if inheritable & !(self.cap_inheritable | allowed) != 0
            || inheritable & !(self.cap_inheritable | self.cap_bounding) != 0
        {
            return Err(Errno::EPERM);
        }
        self.cap_effective = effective;
        self.cap_permitted = permitted;
        self.cap_inheritable = inheritable;
        self.cap_ambient &= permitted & inheritable;
        Ok(())
    }

    /// The sets after `execve` of a program without file capabilities or set-id bits
    /// (`cap_bprm_creds_from_file`): a process with uid or euid 0 gets its bounding and
    /// inheritable sets as permitted (effective too when euid is 0); any other keeps its
    /// ambient set only.
    pub fn apply_exec(&mut self) {
        let permitted = if self.uid == 0 || self.euid == 0 {
            (self.cap_bounding | self.cap_inheritable) | self.cap_ambient
        } else {
            self.cap_ambient
        };
        self.cap_permitted = permitted & CAP_FULL_SET;
        self.cap_effective = if self.euid == 0 {
            self.cap_permitted
        } else {
            self.cap_ambient
        };
        self.keep_caps = false;
    }

    /// `PR_CAP_AMBIENT_RAISE`: the capability must be permitted and inheritable.
    pub fn raise_ambient(&mut self, cap: u32) -> Result<(), Errno> {
        if cap > CAP_LAST_CAP {
            return Err(Errno::EINVAL);
        }
        let bit = 1u64 << cap;
        if self.cap_permitted & bit == 0 || self.cap_inheritable & bit == 0 {
            return Err(Errno::EPERM);
        }
        self.cap_ambient |= bit;
        Ok(())
    }

    /// `PR_CAPBSET_DROP`: needs `CAP_SETPCAP`.
    pub fn drop_bounding(&mut self, cap: u32) -> Result<(), Errno> {
        if cap > CAP_LAST_CAP {
            return Err(Errno::EINVAL);
        }
        if !self.has_cap(CAP_SETPCAP) {
            return Err(Errno::EPERM);
        }
        self.cap_bounding &= !(1u64 << cap);
        Ok(())
    }

    /// Whether capability `cap` is in the effective set.
    pub fn has_cap(&self, cap: u32) -> bool {
        cap < 64 && self.cap_effective & (1 << cap) != 0
    }

    /// Whether the task may change user ids freely (`CAP_SETUID`).
    pub fn is_privileged(&self) -> bool {
        self.has_cap(CAP_SETUID)
    }

    /// Whether the task may change group ids freely (`CAP_SETGID`).
    fn may_setgid(&self) -> bool {
        self.has_cap(CAP_SETGID)
    }

    /// Whether the task is in group `gid` (effective or supplementary), for permission checks.
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// `setuid(uid)`.
    pub fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
        let old = self.clone();
        if uid == KEEP {
            return Err(Errno::EINVAL);
        }
        if self.is_privileged() {
            self.uid = uid;
            self.suid = uid;
        } else if uid != self.uid && uid != self.suid {
            return Err(Errno::EPERM);
        }
        self.euid = uid;
        self.fsuid = uid;
        self.fix_caps(&old);
        Ok(())
    }

    /// `setgid(gid)`.
    pub fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
        if gid == KEEP {
            return Err(Errno::EINVAL);
        }
        if self.may_setgid() {
            self.gid = gid;
            self.sgid = gid;
        } else if gid != self.gid && gid != self.sgid {
            return Err(Errno::EPERM);
        }
        self.egid = gid;
        self.fsgid = gid;
        Ok(())
    }

    /// `setreuid(ruid, euid)`.
    pub fn setreuid(&mut self, ruid: u32, euid: u32) -> Result<(), Errno> {
        let old = self.clone();
        let priv_ = self.is_privileged();
        if ruid != KEEP && !priv_ && ruid != self.uid && ruid != self.euid {
            return Err(Errno::EPERM);
        }
        if euid != KEEP && !priv_ && euid != self.uid && euid != self.euid && euid != self.suid {
            return Err(Errno::EPERM);
        }
        let old_ruid = self.uid;
        if ruid != KEEP {
            self.uid = ruid;
        }
        if euid != KEEP {
            self.euid = euid;
        }
        if ruid != KEEP || (euid != KEEP && euid != old_ruid) {
            self.suid = self.euid;
        }
        self.fsuid = self.euid;
        self.fix_caps(&old);
        Ok(())
    }

    /// `setregid(rgid, egid)`.
    pub fn setregid(&mut self, rgid: u32, egid: u32) -> Result<(), Errno> {
        let priv_ = self.may_setgid();
        if rgid != KEEP && !priv_ && rgid != self.gid && rgid != self.egid {
            return Err(Errno::EPERM);
        }
        if egid != KEEP && !priv_ && egid != self.gid && egid != self.egid && egid != self.sgid {
            return Err(Errno::EPERM);
        }
        let old_rgid = self.gid;
        if rgid != KEEP {
            self.gid = rgid;
        }
        if egid != KEEP {
            self.egid = egid;
        }
        if rgid != KEEP || (egid != KEEP && egid != old_rgid) {
            self.sgid = self.egid;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// `setresuid(ruid, euid, suid)`.
    pub fn setresuid(&mut self, ruid: u32, euid: u32, suid: u32) -> Result<(), Errno> {
        let old = self.clone();
        if !self.is_privileged() {
            let ok = |v: u32| v == KEEP || v == self.uid || v == self.euid || v == self.suid;
            if !(ok(ruid) && ok(euid) && ok(suid)) {
                return Err(Errno::EPERM);
            }
        }
        if ruid != KEEP {
            self.uid = ruid;
        }
        if euid != KEEP {
            self.euid = euid;
        }
        if suid != KEEP {
            self.suid = suid;
        }
        self.fsuid = self.euid;
        self.fix_caps(&old);
        Ok(())
    }

    /// `setresgid(rgid, egid, sgid)`.
    pub fn setresgid(&mut self, rgid: u32, egid: u32, sgid: u32) -> Result<(), Errno> {
        if !self.may_setgid() {
            let ok = |v: u32| v == KEEP || v == self.gid || v == self.egid || v == self.sgid;
            if !(ok(rgid) && ok(egid) && ok(sgid)) {
                return Err(Errno::EPERM);
            }
        }
        if rgid != KEEP {
            self.gid = rgid;
        }
        if egid != KEEP {
            self.egid = egid;
        }
        if sgid != KEEP {
            self.sgid = sgid;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// `setfsuid(uid)`: returns the previous fsuid; an unpermitted change is ignored.
    pub fn setfsuid(&mut self, uid: u32) -> u32 {
        let old = self.fsuid;
        if uid != KEEP
            && (self.is_privileged() || [self.uid, self.euid, self.suid, self.fsuid].contains(&uid))
        {
            self.fsuid = uid;
            // The filesystem capabilities follow fsuid 0 (`cap_task_fix_setuid`).
            if old == 0 && uid != 0 {
                self.cap_effective &= !CAP_FS_MASK;
            } else if old != 0 && uid == 0 {
                self.cap_effective |= self.cap_permitted & CAP_FS_MASK;
            }
        }
        old
    }

    /// `setfsgid(gid)`: returns the previous fsgid; an unpermitted change is ignored.
    pub fn setfsgid(&mut self, gid: u32) -> u32 {
        let old = self.fsgid;
        if gid != KEEP
            && (self.may_setgid() || [self.gid, self.egid, self.sgid, self.fsgid].contains(&gid))
        {
            self.fsgid = gid;
        }
        old
    }

    /// `setgroups(groups)`.
    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<(), Errno> {
        if !self.may_setgid() {
            return Err(Errno::EPERM);
        }
        if groups.len() > NGROUPS_MAX {
            return Err(Errno::EINVAL);
        }
        self.groups = groups;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_setuid_rules() {
        let mut c = Credentials::new(1000, 1000);
        assert_eq!(c.setuid(0), Err(Errno::EPERM));
        assert_eq!(c.setuid(1000), Ok(()));
        assert_eq!(c.setgroups(vec![1]), Err(Errno::EPERM));
        assert_eq!(c.setresuid(KEEP, KEEP, 5), Err(Errno::EPERM));
    }

    #[test]
    fn root_drops_privileges() {
        let mut c = Credentials::new(0, 0);
        c.setresuid(KEEP, 1000, KEEP).unwrap();
        assert_eq!((c.uid, c.euid, c.suid), (0, 1000, 0));
        // The saved uid still allows regaining root.
        c.setresuid(KEEP, 0, KEEP).unwrap();
        assert_eq!(c.cap_effective, CAP_FULL_SET);
        c.setuid(1000).unwrap();
        assert_eq!((c.uid, c.euid, c.suid, c.fsuid), (1000, 1000, 1000, 1000));
        assert_eq!((c.cap_effective, c.cap_permitted), (0, 0));
        assert_eq!(c.setuid(0), Err(Errno::EPERM));
    }

    #[test]
    fn capabilities_follow_uid_changes_and_exec() {
        let mut c = Credentials::new(0, 0);
        let bnd = 1 << CAP_CHOWN | 1 << CAP_KILL | 1 << CAP_SETUID;
        c.cap_bounding = bnd;
        c.cap_effective = bnd;
        c.cap_permitted = bnd;
        // Root's exec gives the bounding set.
        c.apply_exec();
        assert_eq!((c.cap_permitted, c.cap_effective), (bnd, bnd));
        assert!(!c.has_cap(CAP_SETGID));
        assert_eq!(c.setgroups(vec![1]), Err(Errno::EPERM));
        // Leaving uid 0 everywhere clears the ambient set too.
        c.cap_inheritable = 1 << CAP_KILL;
        c.raise_ambient(CAP_KILL).unwrap();
        assert_eq!(c.raise_ambient(CAP_SETGID), Err(Errno::EPERM));
        c.setresuid(1000, 1000, 1000).unwrap();
        assert_eq!((c.cap_permitted, c.cap_effective, c.cap_ambient), (0, 0, 0));
        // A non-root process keeps its ambient set across exec.
        let mut u = Credentials::new(1000, 1000);
        u.cap_permitted = 1 << CAP_KILL;
        u.cap_inheritable = 1 << CAP_KILL;
        u.raise_ambient(CAP_KILL).unwrap();
        u.cap_effective = 1 << CAP_KILL;
        u.apply_exec();
        assert_eq!(
            (u.cap_permitted, u.cap_effective),
            (1 << CAP_KILL, 1 << CAP_KILL)
        );
        let mut v = Credentials::new(1000, 1000);
        v.cap_permitted = 1 << CAP_KILL;
        v.cap_effective = 1 << CAP_KILL;
        v.apply_exec();
        assert_eq!((v.cap_permitted, v.cap_effective), (0, 0));
        assert_eq!(cap_from_name("cap_net_raw"), Some(13));
        assert_eq!(cap_from_name("CAP_NOPE"), None);
    }

    #[test]
    fn setreuid_updates_saved_uid() {
        let mut c = Credentials::new(0, 0);
        c.setreuid(1000, 1001).unwrap();
        assert_eq!((c.uid, c.euid, c.suid), (1000, 1001, 1001));
    }
}
