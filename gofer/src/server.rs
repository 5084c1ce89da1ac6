//! The lisafs [`Dispatcher`] implemented on [`HostTree`]: decodes nothing itself (the
//! protocol crate does), only maps each message to a tree operation and converts host
//! attributes into protocol types.

use lisafs_proto::{
    CloseReq, CreatedFile, Dirent, Dispatcher, FAllocateReq, FStatFsReq, FStatFsResp, FStatReq,
    FStatResp, FSyncReq, Getdents64Req, Getdents64Resp, HandleId, HandlerResult, Inode, LinkAtReq,
    MAX_PAYLOAD, MkdirAtReq, MknodAtReq, MountReq, MountResp, NewNodeResp, NodeId, OpenAtReq,
    OpenCreateAtReq, Opened, PReadReq, PReadResp, PWriteReq, PWriteResp, ReadLinkAtReq,
    ReadLinkAtResp, RenameAtReq, SetStatReq, SetStatResp, SetTime, Stat, StatFs, SymlinkAtReq,
    UnlinkAtReq, WalkReq, WalkResp, WalkStatReq, WalkStatResp, WalkStatus,
};

use linux_abi::Errno;

use crate::tree::{HostTree, Owner, SetStat, TimeSet, WalkEnd};

fn inode(id: u64, st: &libc::stat) -> Inode {
    Inode {
        id: NodeId(id),
        stat: Stat::from_host(st),
    }
}

/// `u32::MAX` (`-1`) means "leave unchanged" for created files' owners.
fn owner(uid: u32, gid: u32) -> Option<Owner> {
    Some(Owner { uid, gid })
}

/// Maps a walk end to the protocol status; errors other than `ENOENT` fail the request.
fn status(end: WalkEnd) -> Result<WalkStatus, Errno> {
    match end {
        WalkEnd::Complete => Ok(WalkStatus::Complete),
        WalkEnd::Symlink => Ok(WalkStatus::Symlink),
        WalkEnd::Failed(e) if e == Errno::ENOENT => Ok(WalkStatus::NotFound),
        WalkEnd::Failed(e) => Err(e),
    }
}

fn time(t: Option<SetTime>) -> Option<TimeSet> {
    t.map(|t| match t {
        SetTime::Now => TimeSet::Now,
        SetTime::At(ts) => TimeSet::At {
            sec: ts.sec,
            nsec: i64::from(ts.nsec),
        },
    })
}

fn flags(f: u32) -> i32 {
    f as i32
}

impl Dispatcher for HostTree {
    fn mount(&self, req: MountReq) -> HandlerResult<MountResp> {
        let (root, st) = self.mount()?;
        let names: Vec<&[u8]> = req
            .path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        if names.is_empty() {
            return Ok(MountResp {
                root: inode(root, &st),
                max_payload: MAX_PAYLOAD as u32,
            });
        }
        // A sub-tree: walk to it from the root, which must end in a directory.
        let w = self.walk(root, &names);
        let _ = self.close_node(root);
        let w = w?;
        let last = w.nodes.last().copied();
        for &(id, _) in &w.nodes[..w.nodes.len().saturating_sub(1)] {
            let _ = self.close_node(id);
        }
        let fail = |e: Errno| {
            if let Some((id, _)) = last {
                let _ = self.close_node(id);
            }
            Err(e)
        };
        match (w.end, last) {
            (WalkEnd::Complete, Some((id, st))) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                Ok(MountResp {
                    root: inode(id, &st),
                    max_payload: MAX_PAYLOAD as u32,
                })
            }
            (WalkEnd::Complete, _) => fail(Errno::ENOTDIR),
            (WalkEnd::Symlink, _) => fail(Errno::ELOOP),
            (WalkEnd::Failed(e), _) => fail(e),
        }
    }

    fn walk(&self, req: WalkReq) -> HandlerResult<WalkResp> {
        self.check_debug_panic(&req.names);
        let w = self.walk(req.dir.0, &req.names)?;
        match status(w.end) {
            Ok(status) => Ok(WalkResp {
                status,
                nodes: w.nodes.iter().map(|(id, st)| inode(*id, st)).collect(),
            }),
            Err(e) => {
                for (id, _) in w.nodes {
                    let _ = self.close_node(id);
                }
                Err(e)
            }
        }
    }

    fn walk_stat(&self, req: WalkStatReq) -> HandlerResult<WalkStatResp> {
        self.check_debug_panic(&req.names);
        let (stats, end) = self.walk_stat(req.dir.0, &req.names)?;
        Ok(WalkStatResp {
            status: status(end)?,
            stats: stats.iter().map(Stat::from_host).collect(),
        })
    }

    fn fstat(&self, req: FStatReq) -> HandlerResult<FStatResp> {
        Ok(FStatResp {
            stat: Stat::from_host(&self.stat(req.node.0)?),
        })
    }

    fn set_stat(&self, req: SetStatReq) -> HandlerResult<SetStatResp> {
        let s = SetStat {
            mode: req.mode,
            uid: req.uid,
            gid: req.gid,
            size: req.size,
            atime: time(req.atime),
            mtime: time(req.mtime),
        };
        self.set_stat(req.node.0, &s)?;
        Ok(SetStatResp {
            stat: Stat::from_host(&self.stat(req.node.0)?),
        })
    }

    fn open_at(&self, req: OpenAtReq) -> HandlerResult<Opened> {
        let file = self.open(req.node.0, flags(req.flags))?;
        match self.dup_file(file) {
            Ok(fd) => Ok(Opened {
                handle: HandleId(file),
                fd: Some(fd),
            }),
            Err(e) => {
                let _ = self.close_file(file);
                Err(e)
            }
        }
    }

    fn open_create_at(&self, req: OpenCreateAtReq) -> HandlerResult<CreatedFile> {
        let (node, st, file) = self.create(
            req.dir.0,
            &req.name,
            flags(req.flags),
            req.mode,
            owner(req.uid, req.gid),
        )?;
        match self.dup_file(file) {
            Ok(fd) => Ok(CreatedFile {
                node: inode(node, &st),
                handle: HandleId(file),
                fd: Some(fd),
            }),
            Err(e) => {
                let _ = self.close_file(file);
                let _ = self.close_node(node);
                Err(e)
            }
        }
    }

    fn mkdir_at(&self, req: MkdirAtReq) -> HandlerResult<NewNodeResp> {
        let (id, st) = self.mkdir(req.dir.0, &req.name, req.mode, owner(req.uid, req.gid))?;
        Ok(NewNodeResp {
            node: inode(id, &st),
        })
    }

    fn mknod_at(&self, req: MknodAtReq) -> HandlerResult<NewNodeResp> {
        let (id, st) = self.mknod(
            req.dir.0,
            &req.name,
            req.mode,
            req.rdev,
            owner(req.uid, req.gid),
        )?;
        Ok(NewNodeResp {
            node: inode(id, &st),
        })
    }

    fn symlink_at(&self, req: SymlinkAtReq) -> HandlerResult<NewNodeResp> {
        let (id, st) = self.symlink(req.dir.0, &req.name, &req.target, owner(req.uid, req.gid))?;
        Ok(NewNodeResp {
            node: inode(id, &st),
        })
    }

    fn link_at(&self, req: LinkAtReq) -> HandlerResult<NewNodeResp> {
        let (id, st) = self.link(req.dir.0, &req.name, req.target.0)?;
        Ok(NewNodeResp {
            node: inode(id, &st),
        })
    }

    fn unlink_at(&self, req: UnlinkAtReq) -> HandlerResult<()> {
        self.unlink(req.dir.0, &req.name, flags(req.flags))
    }

    fn rename_at(&self, req: RenameAtReq) -> HandlerResult<()> {
        self.rename(
            req.old_dir.0,
            &req.old_name,
            req.new_dir.0,
            &req.new_name,
            req.flags,
        )
    }

    fn read_link_at(&self, req: ReadLinkAtReq) -> HandlerResult<ReadLinkAtResp> {
        Ok(ReadLinkAtResp {
            target: self.readlink(req.node.0)?,
        })
    }

    fn getdents64(&self, req: Getdents64Req) -> HandlerResult<Getdents64Resp> {
        let ents = self.read_dir(req.handle.0, req.offset, req.count as usize)?;
        Ok(Getdents64Resp {
            entries: ents
                .into_iter()
                .map(|e| Dirent {
                    ino: e.ino,
                    off: e.off,
                    kind: e.kind,
                    name: e.name,
                })
                .collect(),
        })
    }

    fn pread(&self, req: PReadReq) -> HandlerResult<PReadResp> {
        Ok(PReadResp {
            data: self.pread(req.handle.0, req.offset, req.count as usize)?,
        })
    }

    fn pwrite(&self, req: PWriteReq) -> HandlerResult<PWriteResp> {
        let n = self.pwrite(req.handle.0, req.offset, &req.data)?;
        Ok(PWriteResp { written: n as u64 })
    }

    fn fsync(&self, req: FSyncReq) -> HandlerResult<()> {
        self.fsync(req.handle.0, req.data_only)
    }

    fn fstatfs(&self, req: FStatFsReq) -> HandlerResult<FStatFsResp> {
        let s = self.statfs(req.node.0)?;
        Ok(FStatFsResp {
            statfs: StatFs::from_host(&s),
        })
    }

    fn fallocate(&self, req: FAllocateReq) -> HandlerResult<()> {
        self.fallocate(req.handle.0, req.mode as i32, req.offset, req.len)
    }

    fn close(&self, req: CloseReq) -> HandlerResult<()> {
        for h in req.handles {
            let _ = self.close_file(h.0);
        }
        for n in req.nodes {
            let _ = self.close_node(n.0);
        }
        Ok(())
    }
}
