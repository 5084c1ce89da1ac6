//! Process credentials (user and group ids) and the Linux rules for changing them.
//!
//! The sandbox has no capabilities model yet: a task whose effective uid is 0 is treated as
//! holding `CAP_SETUID`/`CAP_SETGID` (that is the root of the sandbox's user namespace).

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
    /// Effective capability set (reported by `capget`; checks use `euid == 0`).
    pub cap_effective: u64,
    /// Permitted capability set.
    pub cap_permitted: u64,
    /// Inheritable capability set.
    pub cap_inheritable: u64,
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
/// `CAP_SYS_ADMIN`.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_SYS_NICE`.
pub const CAP_SYS_NICE: u32 = 23;
/// `CAP_SYS_RESOURCE`: exceed resource limits, lower `oom_score_adj`.
pub const CAP_SYS_RESOURCE: u32 = 24;

/// Every capability up to `CAP_CHECKPOINT_RESTORE` (40).
pub const CAP_FULL_SET: u64 = (1 << 41) - 1;

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
        }
    }

    /// Drops the capabilities when no uid is 0 any more (Linux without `SECBIT_KEEP_CAPS`).
    fn fix_caps(&mut self) {
        if self.uid != 0 && self.euid != 0 && self.suid != 0 {
            self.cap_permitted = 0;
            self.cap_effective = 0;
        } else if self.euid != 0 {
            self.cap_effective = 0;
        } else {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// `capset`: the new sets must stay within the permitted set.
    pub fn capset(
        &mut self,
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<(), Errno> {
        if permitted & !self.cap_permitted != 0 || effective & !permitted != 0 {
            return Err(Errno::EPERM);
        }
        if inheritable & !(self.cap_inheritable | self.cap_permitted) != 0 {
            return Err(Errno::EPERM);
        }
        self.cap_effective = effective;
        self.cap_permitted = permitted;
        self.cap_inheritable = inheritable;
        Ok(())
    }

    /// Whether capability `cap` is in the effective set.
    pub fn has_cap(&self, cap: u32) -> bool {
        cap < 64 && self.cap_effective & (1 << cap) != 0
    }

    /// Whether the task may change ids freely (effective uid 0).
    pub fn is_privileged(&self) -> bool {
        self.euid == 0
    }

    /// Whether the task is in group `gid` (effective or supplementary), for permission checks.
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// `setuid(uid)`.
    pub fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
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
        self.fix_caps();
        Ok(())
    }

    /// `setgid(gid)`.
    pub fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
        if gid == KEEP {
            return Err(Errno::EINVAL);
        }
        if self.is_privileged() {
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
        self.fix_caps();
        Ok(())
    }

    /// `setregid(rgid, egid)`.
    pub fn setregid(&mut self, rgid: u32, egid: u32) -> Result<(), Errno> {
        let priv_ = self.is_privileged();
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
        self.fix_caps();
        Ok(())
    }

    /// `setresgid(rgid, egid, sgid)`.
    pub fn setresgid(&mut self, rgid: u32, egid: u32, sgid: u32) -> Result<(), Errno> {
        if !self.is_privileged() {
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
        }
        old
    }

    /// `setfsgid(gid)`: returns the previous fsgid; an unpermitted change is ignored.
    pub fn setfsgid(&mut self, gid: u32) -> u32 {
        let old = self.fsgid;
        if gid != KEEP
            && (self.is_privileged() || [self.gid, self.egid, self.sgid, self.fsgid].contains(&gid))
        {
            self.fsgid = gid;
        }
        old
    }

    /// `setgroups(groups)`.
    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<(), Errno> {
        if !self.is_privileged() {
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
    fn setreuid_updates_saved_uid() {
        let mut c = Credentials::new(0, 0);
        c.setreuid(1000, 1001).unwrap();
        assert_eq!((c.uid, c.euid, c.suid), (1000, 1001, 1001));
    }
}
