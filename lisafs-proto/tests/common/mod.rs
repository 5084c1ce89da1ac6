//! A toy in-memory file system implementing `Dispatcher`, shared by the tests.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use lisafs_proto::*;

/// Node id of a special file whose `FStat` waits until `rendezvous` callers are inside.
pub const RENDEZVOUS_INO: u64 = 1_000_000;
/// Node id whose `FStat` blocks until `release` is called.
pub const BLOCK_INO: u64 = 1_000_001;

#[derive(Debug, Clone)]
enum Kind {
    Dir(BTreeMap<Vec<u8>, u64>),
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Special,
}

#[derive(Debug, Clone)]
struct INode {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    rdev: u64,
    mtime: Timespec,
    atime: Timespec,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    next_ino: u64,
    nodes: HashMap<u64, u64>,
    handles: HashMap<u64, u64>,
    inodes: HashMap<u64, INode>,
    closed_nodes: u64,
    closed_handles: u64,
}

/// The toy file system.
#[derive(Debug)]
pub struct MemFs {
    state: Mutex<State>,
    rendezvous: Mutex<usize>,
    rendezvous_cv: Condvar,
    /// How many callers must meet in the rendezvous `FStat`.
    pub rendezvous_n: usize,
    blocked: Mutex<bool>,
    blocked_cv: Condvar,
    /// Content served through a donated pipe by `OpenAt` with `O_NONBLOCK`... see `open_at`.
    pub pipe_content: Vec<u8>,
}

fn dir_stat_mode() -> u32 {
    libc::S_IFDIR | 0o755
}

impl MemFs {
    /// A file system with `/etc/passwd`, `/usr/bin/` (empty), `/lnk -> /etc` and
    /// `/big` (2 MiB of a pattern).
    pub fn new(rendezvous_n: usize) -> MemFs {
        let fs = MemFs {
            state: Mutex::new(State {
                next_id: 1,
                next_ino: 1,
                ..State::default()
            }),
            rendezvous: Mutex::new(0),
            rendezvous_cv: Condvar::new(),
            rendezvous_n,
            blocked: Mutex::new(true),
            blocked_cv: Condvar::new(),
            pipe_content: b"hello through a pipe".to_vec(),
        };
        {
            let mut st = fs.state.lock().unwrap();
            let root = st.new_inode(Kind::Dir(BTreeMap::new()), dir_stat_mode());
            assert_eq!(root, 1);
            let etc = st.add(root, b"etc", Kind::Dir(BTreeMap::new()), dir_stat_mode());
            st.add(
                etc,
                b"passwd",
                Kind::File(b"root:x:0:0\n".to_vec()),
                libc::S_IFREG | 0o644,
            );
            let usr = st.add(root, b"usr", Kind::Dir(BTreeMap::new()), dir_stat_mode());
            st.add(usr, b"bin", Kind::Dir(BTreeMap::new()), dir_stat_mode());
            st.add(
                root,
                b"lnk",
                Kind::Symlink(b"/etc".to_vec()),
                libc::S_IFLNK | 0o777,
            );
            st.add(
                root,
                b"big",
                Kind::File(big_content()),
                libc::S_IFREG | 0o644,
            );
        }
        fs
    }

    /// Lets every blocked `FStat(BLOCK_INO)` return.
    pub fn release(&self) {
        *self.blocked.lock().unwrap() = false;
        self.blocked_cv.notify_all();
    }

    /// Number of live node ids.
    pub fn live_nodes(&self) -> usize {
        self.state.lock().unwrap().nodes.len()
    }

    /// Number of live handles.
    pub fn live_handles(&self) -> usize {
        self.state.lock().unwrap().handles.len()
    }
}

/// The content of `/big`: 2 MiB of `i % 251`, computed once.
fn big_content() -> Vec<u8> {
    static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BIG.get_or_init(|| (0..2u32 << 20).map(|i| (i % 251) as u8).collect())
        .clone()
}

impl State {
    fn new_inode(&mut self, kind: Kind, mode: u32) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if matches!(kind, Kind::Dir(_)) { 2 } else { 1 };
        self.inodes.insert(
            ino,
            INode {
                kind,
                mode,
                uid: 0,
                gid: 0,
                nlink,
                rdev: 0,
                mtime: Timespec::default(),
                atime: Timespec::default(),
            },
        );
        ino
    }

    fn add(&mut self, dir: u64, name: &[u8], kind: Kind, mode: u32) -> u64 {
        let ino = self.new_inode(kind, mode);
        if let Some(INode {
            kind: Kind::Dir(ents),
            ..
        }) = self.inodes.get_mut(&dir)
        {
            ents.insert(name.to_vec(), ino);
        }
        ino
    }

    fn stat(&self, ino: u64) -> Result<Stat, Errno> {
        let i = self.inodes.get(&ino).ok_or(Errno::ENOENT)?;
        let size = match &i.kind {
            Kind::Dir(e) => e.len() as u64,
            Kind::File(d) => d.len() as u64,
            Kind::Symlink(t) => t.len() as u64,
            Kind::Special => 0,
        };
        Ok(Stat {
            dev: 42,
            ino,
            mode: i.mode,
            nlink: i.nlink,
            uid: i.uid,
            gid: i.gid,
            rdev: i.rdev,
            size,
            blksize: 4096,
            blocks: size.div_ceil(512),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.mtime,
        })
    }

    fn node_ino(&self, id: NodeId) -> Result<u64, Errno> {
        if id.0 == RENDEZVOUS_INO || id.0 == BLOCK_INO {
            return Ok(id.0);
        }
        self.nodes.get(&id.0).copied().ok_or(Errno::EBADF)
    }

    fn handle_ino(&self, id: HandleId) -> Result<u64, Errno> {
        self.handles.get(&id.0).copied().ok_or(Errno::EBADF)
    }

    fn new_node(&mut self, ino: u64) -> Result<Inode, Errno> {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, ino);
        Ok(Inode {
            id: NodeId(id),
            stat: self.stat(ino)?,
        })
    }

    fn new_handle(&mut self, ino: u64) -> HandleId {
        let id = self.next_id;
        self.next_id += 1;
        self.handles.insert(id, ino);
        HandleId(id)
    }

    fn dir_entries(&self, ino: u64) -> Result<&BTreeMap<Vec<u8>, u64>, Errno> {
        match self.inodes.get(&ino).map(|i| &i.kind) {
            Some(Kind::Dir(e)) => Ok(e),
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn dir_entries_mut(&mut self, ino: u64) -> Result<&mut BTreeMap<Vec<u8>, u64>, Errno> {
        match self.inodes.get_mut(&ino).map(|i| &mut i.kind) {
            Some(Kind::Dir(e)) => Ok(e),
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn check_name(name: &[u8]) -> Result<(), Errno> {
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Walks names; returns (status, inos walked).
    fn walk(&self, dir: u64, names: &[Vec<u8>]) -> Result<(WalkStatus, Vec<u64>), Errno> {
        let mut cur = dir;
        let mut out = Vec::new();
        for name in names {
            Self::check_name(name)?;
            let ents = self.dir_entries(cur)?;
            let Some(&ino) = ents.get(name) else {
                return Ok((WalkStatus::NotFound, out));
            };
            out.push(ino);
            if matches!(self.inodes[&ino].kind, Kind::Symlink(_)) {
                return Ok((WalkStatus::Symlink, out));
            }
            cur = ino;
        }
        Ok((WalkStatus::Complete, out))
    }

    fn create(
        &mut self,
        dir: NodeId,
        name: &[u8],
        kind: Kind,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Inode, Errno> {
        Self::check_name(name)?;
        let d = self.node_ino(dir)?;
        if self.dir_entries(d)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.add(d, name, kind, mode);
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.uid = uid;
            i.gid = gid;
        }
        self.new_node(ino)
    }
}

impl Dispatcher for MemFs {
    fn mount(&self, _req: MountReq) -> HandlerResult<MountResp> {
        let mut st = self.state.lock().unwrap();
        Ok(MountResp {
            root: st.new_node(1)?,
            max_payload: MAX_PAYLOAD as u32,
        })
    }

    fn walk(&self, req: WalkReq) -> HandlerResult<WalkResp> {
        let mut st = self.state.lock().unwrap();
        let dir = st.node_ino(req.dir)?;
        let (status, inos) = st.walk(dir, &req.names)?;
        let nodes = inos
            .into_iter()
            .map(|i| st.new_node(i))
            .collect::<Result<_, _>>()?;
        Ok(WalkResp { status, nodes })
    }

    fn walk_stat(&self, req: WalkStatReq) -> HandlerResult<WalkStatResp> {
        let st = self.state.lock().unwrap();
        let dir = st.node_ino(req.dir)?;
        let (status, inos) = st.walk(dir, &req.names)?;
        let stats = inos
            .into_iter()
            .map(|i| st.stat(i))
            .collect::<Result<_, _>>()?;
        Ok(WalkStatResp { status, stats })
    }

    fn fstat(&self, req: FStatReq) -> HandlerResult<FStatResp> {
        if req.node.0 == RENDEZVOUS_INO {
            // Wait until `rendezvous_n` calls are being handled at the same time. The
            // timeout only turns a broken implementation into a failure, not a hang.
            let mut n = self.rendezvous.lock().unwrap();
            *n += 1;
            self.rendezvous_cv.notify_all();
            let (n, res) = self
                .rendezvous_cv
                .wait_timeout_while(n, Duration::from_secs(60), |n| *n < self.rendezvous_n)
                .unwrap();
            drop(n);
            if res.timed_out() {
                return Err(Errno::ETIMEDOUT);
            }
            return Ok(FStatResp {
                stat: Stat {
                    ino: RENDEZVOUS_INO,
                    ..Stat::default()
                },
            });
        }
        if req.node.0 == BLOCK_INO {
            let g = self.blocked.lock().unwrap();
            let _g = self.blocked_cv.wait_while(g, |b| *b).unwrap();
            return Err(Errno::EINTR);
        }
        let st = self.state.lock().unwrap();
        Ok(FStatResp {
            stat: st.stat(st.node_ino(req.node)?)?,
        })
    }

    fn set_stat(&self, req: SetStatReq) -> HandlerResult<SetStatResp> {
        let mut st = self.state.lock().unwrap();
        let ino = st.node_ino(req.node)?;
        let i = st.inodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        if let Some(m) = req.mode {
            i.mode = (i.mode & libc::S_IFMT) | (m & 0o7777);
        }
        if let Some(u) = req.uid {
            i.uid = u;
        }
        if let Some(g) = req.gid {
            i.gid = g;
        }
        if let Some(s) = req.size {
            match &mut i.kind {
                Kind::File(d) => d.resize(s as usize, 0),
                Kind::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
        }
        let now = Timespec { sec: 1, nsec: 0 };
        match req.atime {
            Some(SetTime::At(t)) => i.atime = t,
            Some(SetTime::Now) => i.atime = now,
            None => {}
        }
        match req.mtime {
            Some(SetTime::At(t)) => i.mtime = t,
            Some(SetTime::Now) => i.mtime = now,
            None => {}
        }
        Ok(SetStatResp {
            stat: st.stat(ino)?,
        })
    }

    fn open_at(&self, req: OpenAtReq) -> HandlerResult<Opened> {
        let mut st = self.state.lock().unwrap();
        let ino = st.node_ino(req.node)?;
        let handle = st.new_handle(ino);
        // Donate a pipe whose read end yields the file's content (or `pipe_content` for
        // directories), to prove fd passing works.
        let content = match &st.inodes[&ino].kind {
            Kind::File(d) if d.len() < 4096 => d.clone(),
            _ => self.pipe_content.clone(),
        };
        let (r, w) = nix::unistd::pipe().map_err(nix_errno)?;
        nix::unistd::write(&w, &content).map_err(nix_errno)?;
        drop(w);
        Ok(Opened {
            handle,
            fd: Some(r),
        })
    }

    fn open_create_at(&self, req: OpenCreateAtReq) -> HandlerResult<CreatedFile> {
        let mut st = self.state.lock().unwrap();
        let node = st.create(
            req.dir,
            &req.name,
            Kind::File(Vec::new()),
            libc::S_IFREG | (req.mode & 0o7777),
            req.uid,
            req.gid,
        )?;
        let handle = st.new_handle(node.stat.ino);
        let (r, _w): (OwnedFd, OwnedFd) = nix::unistd::pipe().map_err(nix_errno)?;
        Ok(CreatedFile {
            node,
            handle,
            fd: Some(r),
        })
    }

    fn mkdir_at(&self, req: MkdirAtReq) -> HandlerResult<NewNodeResp> {
        let mut st = self.state.lock().unwrap();
        let node = st.create(
            req.dir,
            &req.name,
            Kind::Dir(BTreeMap::new()),
            libc::S_IFDIR | (req.mode & 0o7777),
            req.uid,
            req.gid,
        )?;
        Ok(NewNodeResp { node })
    }

    fn mknod_at(&self, req: MknodAtReq) -> HandlerResult<NewNodeResp> {
        let mut st = self.state.lock().unwrap();
        let node = st.create(
            req.dir,
            &req.name,
            Kind::Special,
            req.mode,
            req.uid,
            req.gid,
        )?;
        if let Some(i) = st.inodes.get_mut(&node.stat.ino) {
            i.rdev = req.rdev;
        }
        let stat = st.stat(node.stat.ino)?;
        Ok(NewNodeResp {
            node: Inode { id: node.id, stat },
        })
    }

    fn symlink_at(&self, req: SymlinkAtReq) -> HandlerResult<NewNodeResp> {
        let mut st = self.state.lock().unwrap();
        let node = st.create(
            req.dir,
            &req.name,
            Kind::Symlink(req.target),
            libc::S_IFLNK | 0o777,
            req.uid,
            req.gid,
        )?;
        Ok(NewNodeResp { node })
    }

    fn link_at(&self, req: LinkAtReq) -> HandlerResult<NewNodeResp> {
        let mut st = self.state.lock().unwrap();
        State::check_name(&req.name)?;
        let d = st.node_ino(req.dir)?;
        let target = st.node_ino(req.target)?;
        if matches!(st.inodes[&target].kind, Kind::Dir(_)) {
            return Err(Errno::EPERM);
        }
        let ents = st.dir_entries_mut(d)?;
        if ents.contains_key(&req.name) {
            return Err(Errno::EEXIST);
        }
        ents.insert(req.name, target);
        if let Some(i) = st.inodes.get_mut(&target) {
            i.nlink += 1;
        }
        Ok(NewNodeResp {
            node: st.new_node(target)?,
        })
    }

    fn unlink_at(&self, req: UnlinkAtReq) -> HandlerResult<()> {
        let mut st = self.state.lock().unwrap();
        State::check_name(&req.name)?;
        let d = st.node_ino(req.dir)?;
        let ino = *st.dir_entries(d)?.get(&req.name).ok_or(Errno::ENOENT)?;
        let is_dir = matches!(st.inodes[&ino].kind, Kind::Dir(_));
        let rmdir = req.flags & libc::AT_REMOVEDIR as u32 != 0;
        if is_dir && !rmdir {
            return Err(Errno::EISDIR);
        }
        if !is_dir && rmdir {
            return Err(Errno::ENOTDIR);
        }
        if is_dir && !st.dir_entries(ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        st.dir_entries_mut(d)?.remove(&req.name);
        if let Some(i) = st.inodes.get_mut(&ino) {
            i.nlink = i.nlink.saturating_sub(1);
        }
        Ok(())
    }

    fn rename_at(&self, req: RenameAtReq) -> HandlerResult<()> {
        let mut st = self.state.lock().unwrap();
        State::check_name(&req.old_name)?;
        State::check_name(&req.new_name)?;
        let od = st.node_ino(req.old_dir)?;
        let nd = st.node_ino(req.new_dir)?;
        let ino = st
            .dir_entries_mut(od)?
            .remove(&req.old_name)
            .ok_or(Errno::ENOENT)?;
        st.dir_entries_mut(nd)?.insert(req.new_name, ino);
        Ok(())
    }

    fn read_link_at(&self, req: ReadLinkAtReq) -> HandlerResult<ReadLinkAtResp> {
        let st = self.state.lock().unwrap();
        let ino = st.node_ino(req.node)?;
        match &st.inodes[&ino].kind {
            Kind::Symlink(t) => Ok(ReadLinkAtResp { target: t.clone() }),
            _ => Err(Errno::EINVAL),
        }
    }

    fn getdents64(&self, req: Getdents64Req) -> HandlerResult<Getdents64Resp> {
        let st = self.state.lock().unwrap();
        let ino = st.handle_ino(req.handle)?;
        let ents = st.dir_entries(ino)?;
        let mut budget = req.count as usize;
        let mut entries = Vec::new();
        for (i, (name, &child)) in ents.iter().enumerate().skip(req.offset as usize) {
            let reclen = (19 + name.len() + 1 + 7) & !7;
            if reclen > budget {
                if entries.is_empty() {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            budget -= reclen;
            let kind = match st.inodes[&child].kind {
                Kind::Dir(_) => libc::DT_DIR,
                Kind::File(_) => libc::DT_REG,
                Kind::Symlink(_) => libc::DT_LNK,
                Kind::Special => libc::DT_CHR,
            };
            entries.push(Dirent {
                ino: child,
                off: i as u64 + 1,
                kind,
                name: name.clone(),
            });
        }
        Ok(Getdents64Resp { entries })
    }

    fn pread(&self, req: PReadReq) -> HandlerResult<PReadResp> {
        let st = self.state.lock().unwrap();
        let ino = st.handle_ino(req.handle)?;
        match &st.inodes[&ino].kind {
            Kind::File(d) => {
                let start = (req.offset as usize).min(d.len());
                let end = start.saturating_add(req.count as usize).min(d.len());
                Ok(PReadResp {
                    data: d[start..end].to_vec(),
                })
            }
            Kind::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn pwrite(&self, req: PWriteReq) -> HandlerResult<PWriteResp> {
        let mut st = self.state.lock().unwrap();
        let ino = st.handle_ino(req.handle)?;
        match st.inodes.get_mut(&ino).map(|i| &mut i.kind) {
            Some(Kind::File(d)) => {
                let start = req.offset as usize;
                let end = start + req.data.len();
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[start..end].copy_from_slice(&req.data);
                Ok(PWriteResp {
                    written: req.data.len() as u64,
                })
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn fsync(&self, req: FSyncReq) -> HandlerResult<()> {
        self.state
            .lock()
            .unwrap()
            .handle_ino(req.handle)
            .map(|_| ())
    }

    fn fstatfs(&self, req: FStatFsReq) -> HandlerResult<FStatFsResp> {
        self.state.lock().unwrap().node_ino(req.node)?;
        Ok(FStatFsResp {
            statfs: StatFs {
                fs_type: 0x0102_1994,
                block_size: 4096,
                blocks: 100,
                blocks_free: 50,
                blocks_available: 40,
                files: 1000,
                files_free: 900,
                name_length: 255,
                fragment_size: 4096,
            },
        })
    }

    fn fallocate(&self, req: FAllocateReq) -> HandlerResult<()> {
        let mut st = self.state.lock().unwrap();
        let ino = st.handle_ino(req.handle)?;
        match st.inodes.get_mut(&ino).map(|i| &mut i.kind) {
            Some(Kind::File(d)) => {
                let end = (req.offset + req.len) as usize;
                if req.mode == 0 && d.len() < end {
                    d.resize(end, 0);
                }
                Ok(())
            }
            _ => Err(Errno::ENODEV),
        }
    }

    fn close(&self, req: CloseReq) -> HandlerResult<()> {
        let mut st = self.state.lock().unwrap();
        for n in req.nodes {
            if st.nodes.remove(&n.0).is_some() {
                st.closed_nodes += 1;
            }
        }
        for h in req.handles {
            if st.handles.remove(&h.0).is_some() {
                st.closed_handles += 1;
            }
        }
        Ok(())
    }
}

/// Starts a server with `threads` workers on a new socketpair; returns the client and
/// the server thread (which returns the serve result).
pub fn start(
    fs: std::sync::Arc<MemFs>,
    threads: usize,
) -> (
    Client,
    std::sync::Arc<Server>,
    std::thread::JoinHandle<Result<(), ServerError>>,
) {
    let (c, s) = socketpair().expect("socketpair");
    let server = std::sync::Arc::new(Server::new(s));
    let srv = std::sync::Arc::clone(&server);
    let h = std::thread::spawn(move || srv.serve(&*fs, threads));
    (Client::new(c).expect("client"), server, h)
}

/// nix's errno as the protocol's.
fn nix_errno(e: nix::errno::Errno) -> Errno {
    Errno::new(e as i32)
}
