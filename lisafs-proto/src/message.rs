//! Message types of the protocol: ids, the stat structures, one request and one response
//! struct per message, and the [`Request`] / [`Response`] enums tying each to its
//! [`MsgId`].
//!
//! These types only describe data; turning them into bytes is the job of
//! [`crate::codec`], which is the only place that knows the wire encoding.

use serde::{Deserialize, Serialize};

/// Largest data payload of one `PRead` reply or one `PWrite` request, in bytes.
///
/// Larger requests are clamped by the client (a short read or write results).
pub const MAX_IO_SIZE: u32 = 1 << 20;

/// Largest encoded payload of one message (excluding the frame header).
///
/// Leaves room for the fixed fields around an [`MAX_IO_SIZE`] data buffer.
pub const MAX_PAYLOAD: usize = MAX_IO_SIZE as usize + 4096;

/// Largest number of host file descriptors that may travel with one message.
pub const MAX_FDS: usize = 16;

/// Identifies a node (a file, directory, symlink... in the served tree).
///
/// Handed out by the server (which typically holds an `O_PATH` fd for it); never reused
/// for another node on the same connection.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct NodeId(pub u64);

/// Identifies an open file handle created by `OpenAt` / `OpenCreateAt`.
///
/// Never reused on the same connection. Used by `PRead`, `PWrite`, `Getdents64`, `FSync`,
/// `FAllocate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HandleId(pub u64);

/// A point in time (seconds and nanoseconds since the epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

/// File attributes, as returned by `stat(2)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stat {
    /// Device id of the containing file system.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// File type and permission bits (`S_IFMT | 0o7777`).
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Device id (for character and block devices).
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O block size.
    pub blksize: u32,
    /// Number of 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access time.
    pub atime: Timespec,
    /// Last modification time.
    pub mtime: Timespec,
    /// Last status change time.
    pub ctime: Timespec,
}

impl Stat {
    /// Converts a host `struct stat`.
    pub fn from_host(st: &libc::stat) -> Stat {
        let ts = |sec: i64, nsec: i64| Timespec {
            sec,
            nsec: u32::try_from(nsec).unwrap_or(0),
        };
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: u64::try_from(st.st_size).unwrap_or(0),
            blksize: u32::try_from(st.st_blksize).unwrap_or(4096),
            blocks: u64::try_from(st.st_blocks).unwrap_or(0),
            atime: ts(st.st_atime, st.st_atime_nsec),
            mtime: ts(st.st_mtime, st.st_mtime_nsec),
            ctime: ts(st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// The file type bits (`mode & S_IFMT`).
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
}

/// File system statistics, as returned by `statfs(2)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatFs {
    /// File system magic number.
    pub fs_type: u64,
    /// Optimal transfer block size.
    pub block_size: u64,
    /// Total data blocks.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Free blocks available to unprivileged users.
    pub blocks_available: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// Maximum file name length.
    pub name_length: u64,
    /// Fragment size.
    pub fragment_size: u64,
}

impl StatFs {
    /// Converts a host `struct statfs`.
    pub fn from_host(st: &libc::statfs) -> StatFs {
        StatFs {
            fs_type: u64::try_from(st.f_type).unwrap_or(0),
            block_size: u64::try_from(st.f_bsize).unwrap_or(0),
            blocks: st.f_blocks,
            blocks_free: st.f_bfree,
            blocks_available: st.f_bavail,
            files: st.f_files,
            files_free: st.f_ffree,
            name_length: u64::try_from(st.f_namelen).unwrap_or(0),
            fragment_size: u64::try_from(st.f_frsize).unwrap_or(0),
        }
    }
}

/// A node created or walked to: its id and its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inode {
    /// The new node id (the client must eventually `Close` it).
    pub id: NodeId,
    /// Attributes of the node.
    pub stat: Stat,
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalkStatus {
    /// Every component was walked.
    Complete,
    /// The component at index `nodes.len()` does not exist (`ENOENT`).
    NotFound,
    /// The last returned node is a symbolic link; it was not followed and the walk
    /// stopped there (the remaining components were not walked).
    Symlink,
}

/// One directory entry returned by `Getdents64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dirent {
    /// Inode number.
    pub ino: u64,
    /// Cookie to pass as `offset` to continue reading after this entry.
    pub off: u64,
    /// `DT_*` type of the entry.
    pub kind: u8,
    /// Entry name (no `/`, no NUL).
    #[serde(with = "crate::codec::bytes")]
    pub name: Vec<u8>,
}

/// How `SetStat` changes a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetTime {
    /// Set to the server's current time (`UTIME_NOW`).
    Now,
    /// Set to the given time.
    At(Timespec),
}

/// `Mount`: attach to the served tree and get its root node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountReq {
    /// Which tree to attach to; empty means the server's root. Interpreted by the server.
    #[serde(with = "crate::codec::bytes")]
    pub path: Vec<u8>,
}

/// Reply to `Mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountResp {
    /// The root node and its attributes.
    pub root: Inode,
    /// Largest payload the server accepts (at most [`MAX_PAYLOAD`]).
    pub max_payload: u32,
}

/// `Walk`: resolve several components below `dir`, one at a time, creating a node for
/// each component walked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkReq {
    /// Starting directory.
    pub dir: NodeId,
    /// Components, each a single name (no `/`, not `.` or `..`).
    #[serde(with = "crate::codec::bytes_vec")]
    pub names: Vec<Vec<u8>>,
}

/// Reply to `Walk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkResp {
    /// Why the walk stopped.
    pub status: WalkStatus,
    /// One node per component walked, in order (all must eventually be closed).
    pub nodes: Vec<Inode>,
}

/// `WalkStat`: like `Walk` but only returns attributes, creating no nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStatReq {
    /// Starting directory.
    pub dir: NodeId,
    /// Components, each a single name.
    #[serde(with = "crate::codec::bytes_vec")]
    pub names: Vec<Vec<u8>>,
}

/// Reply to `WalkStat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStatResp {
    /// Why the walk stopped.
    pub status: WalkStatus,
    /// Attributes of each component walked, in order.
    pub stats: Vec<Stat>,
}

/// `FStat`: attributes of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FStatReq {
    /// The node.
    pub node: NodeId,
}

/// Reply to `FStat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FStatResp {
    /// The node's attributes.
    pub stat: Stat,
}

/// `SetStat`: change attributes of a node; `None` fields are left alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStatReq {
    /// The node.
    pub node: NodeId,
    /// New permission bits (`chmod`).
    pub mode: Option<u32>,
    /// New owner (`chown`).
    pub uid: Option<u32>,
    /// New group (`chown`).
    pub gid: Option<u32>,
    /// New size (`truncate`).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// Reply to `SetStat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStatResp {
    /// Attributes after the change.
    pub stat: Stat,
}

/// `OpenAt`: open a node; the reply may donate a host fd for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAtReq {
    /// The node to open.
    pub node: NodeId,
    /// `open(2)` flags (`O_RDONLY`, `O_WRONLY`, `O_RDWR`, `O_TRUNC`, ...).
    pub flags: u32,
}

/// Reply to `OpenAt` (a host fd may travel alongside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAtResp {
    /// The open handle.
    pub handle: HandleId,
}

/// `OpenCreateAt`: create and open a regular file `name` in `dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCreateAtReq {
    /// Parent directory.
    pub dir: NodeId,
    /// New file name.
    #[serde(with = "crate::codec::bytes")]
    pub name: Vec<u8>,
    /// `open(2)` flags (`O_CREAT` is implied; `O_EXCL` honoured).
    pub flags: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Reply to `OpenCreateAt` (a host fd may travel alongside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCreateAtResp {
    /// The new node.
    pub node: Inode,
    /// The open handle.
    pub handle: HandleId,
}

/// `MkdirAt`: create a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkdirAtReq {
    /// Parent directory.
    pub dir: NodeId,
    /// New directory name.
    #[serde(with = "crate::codec::bytes")]
    pub name: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// `MknodAt`: create a device, FIFO, socket or regular file node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MknodAtReq {
    /// Parent directory.
    pub dir: NodeId,
    /// New name.
    #[serde(with = "crate::codec::bytes")]
    pub name: Vec<u8>,
    /// File type and permission bits.
    pub mode: u32,
    /// Device number (for `S_IFCHR` / `S_IFBLK`).
    pub rdev: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// `SymlinkAt`: create a symbolic link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymlinkAtReq {
    /// Parent directory.
    pub dir: NodeId,
    /// New link name.
    #[serde(with = "crate::codec::bytes")]
    pub name: Vec<u8>,
    /// Link target (stored verbatim).
    #[serde(with = "crate::codec::bytes")]
    pub target: Vec<u8>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// `LinkAt`: create a hard link `name` in `dir` to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAtReq {
    /// Parent directory of the new link.
    pub dir: NodeId,
    /// New link name.
    #[serde(with = "crate::codec::bytes")]
    pub name: Vec<u8>,
    /// Existing node to link to.
    pub target: NodeId,
}

/// Reply to `MkdirAt`, `MknodAt`, `SymlinkAt` and `LinkAt`: the new node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNodeResp {
    /// The new node.
    pub node: Inode,
}

/// `UnlinkAt`: remove `name` from `dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkAtReq {
    /// Parent directory.
    pub dir: NodeId,
    /// Name to remove.
    #[serde(with = "crate::codec::bytes")]
    pub name: Vec<u8>,
    /// `0` or `AT_REMOVEDIR` (to remove a directory).
    pub flags: u32,
}

/// `RenameAt`: rename `old_dir/old_name` to `new_dir/new_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameAtReq {
    /// Source directory.
    pub old_dir: NodeId,
    /// Source name.
    #[serde(with = "crate::codec::bytes")]
    pub old_name: Vec<u8>,
    /// Destination directory.
    pub new_dir: NodeId,
    /// Destination name.
    #[serde(with = "crate::codec::bytes")]
    pub new_name: Vec<u8>,
    /// `renameat2(2)` flags (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`), usually `0`.
    pub flags: u32,
}

/// Empty reply, for messages that only succeed or fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyResp {}

/// `ReadLinkAt`: read the target of a symlink node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadLinkAtReq {
    /// The symlink node.
    pub node: NodeId,
}

/// Reply to `ReadLinkAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadLinkAtResp {
    /// The link target.
    #[serde(with = "crate::codec::bytes")]
    pub target: Vec<u8>,
}

/// `Getdents64`: read directory entries from an open directory handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Getdents64Req {
    /// An open directory handle.
    pub handle: HandleId,
    /// `0` to start, or the `off` cookie of the last entry received.
    pub offset: u64,
    /// Budget in bytes, measured as `linux_dirent64` records would be (at most
    /// [`MAX_IO_SIZE`]).
    pub count: u32,
}

/// Reply to `Getdents64`; empty at the end of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Getdents64Resp {
    /// The entries, in directory order.
    pub entries: Vec<Dirent>,
}

/// `PRead`: read from an open handle at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PReadReq {
    /// An open handle.
    pub handle: HandleId,
    /// File offset.
    pub offset: u64,
    /// Bytes to read (at most [`MAX_IO_SIZE`]).
    pub count: u32,
}

/// Reply to `PRead`; shorter than requested at end of file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PReadResp {
    /// The bytes read.
    #[serde(with = "crate::codec::bytes")]
    pub data: Vec<u8>,
}

/// `PWrite`: write to an open handle at an offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PWriteReq {
    /// An open handle.
    pub handle: HandleId,
    /// File offset.
    pub offset: u64,
    /// Bytes to write (at most [`MAX_IO_SIZE`]).
    #[serde(with = "crate::codec::bytes")]
    pub data: Vec<u8>,
}

/// Reply to `PWrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PWriteResp {
    /// Bytes written.
    pub written: u64,
}

/// `FSync`: flush an open handle to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FSyncReq {
    /// An open handle.
    pub handle: HandleId,
    /// Only flush data (`fdatasync`).
    pub data_only: bool,
}

/// `FStatFS`: statistics of the file system containing a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FStatFsReq {
    /// Any node of the file system.
    pub node: NodeId,
}

/// Reply to `FStatFS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FStatFsResp {
    /// The statistics.
    pub statfs: StatFs,
}

/// `FAllocate`: `fallocate(2)` on an open handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FAllocateReq {
    /// An open handle.
    pub handle: HandleId,
    /// `fallocate(2)` mode.
    pub mode: u32,
    /// Start offset.
    pub offset: u64,
    /// Length.
    pub len: u64,
}

/// `Close`: release many nodes and handles at once. Unknown ids are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseReq {
    /// Nodes to release.
    pub nodes: Vec<NodeId>,
    /// Open handles to release.
    pub handles: Vec<HandleId>,
}

/// The `Error` reply: the request failed with a positive Linux errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResp {
    /// A positive errno value (`ENOENT`, `EACCES`...).
    pub errno: i32,
}

/// Declares the message ids and the request/response enums from one table so that the
/// three can never disagree.
macro_rules! messages {
    ($($(#[$doc:meta])* $name:ident = $id:literal : $req:ty => $resp:ty,)*) => {
        /// Message ids carried in the frame header. A reply carries the id of its request,
        /// or [`MsgId::Error`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum MsgId {
            /// The error reply ([`ErrorResp`]).
            Error = 0,
            $($(#[$doc])* $name = $id,)*
        }

        impl MsgId {
            /// Every message id, in numeric order.
            pub const ALL: &'static [MsgId] = &[MsgId::Error, $(MsgId::$name,)*];

            /// Parses a wire message id.
            pub fn from_u16(v: u16) -> Option<MsgId> {
                match v {
                    0 => Some(MsgId::Error),
                    $($id => Some(MsgId::$name),)*
                    _ => None,
                }
            }
        }

        /// A request, one variant per message.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Request {
            $($(#[$doc])* $name($req),)*
        }

        /// A successful reply, one variant per message, plus the error reply.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Response {
            /// The request failed.
            Error(ErrorResp),
            $($(#[$doc])* $name($resp),)*
        }

        impl Request {
            /// The message id of this request.
            pub fn msg_id(&self) -> MsgId {
                match self {
                    $(Request::$name(_) => MsgId::$name,)*
                }
            }

            /// Encodes the payload (without the frame header).
            pub fn encode(&self) -> Result<Vec<u8>, crate::ProtoError> {
                match self {
                    $(Request::$name(m) => crate::codec::encode_payload(m),)*
                }
            }

            /// Decodes a request payload for the message id `id`.
            pub fn decode(id: u16, payload: &[u8]) -> Result<Request, crate::ProtoError> {
                match MsgId::from_u16(id) {
                    $(Some(MsgId::$name) => Ok(Request::$name(crate::codec::decode_payload(payload)?)),)*
                    Some(MsgId::Error) | None => Err(crate::ProtoError::UnknownMessage(id)),
                }
            }
        }

        impl Response {
            /// The message id of this reply.
            pub fn msg_id(&self) -> MsgId {
                match self {
                    Response::Error(_) => MsgId::Error,
                    $(Response::$name(_) => MsgId::$name,)*
                }
            }

            /// Encodes the payload (without the frame header).
            pub fn encode(&self) -> Result<Vec<u8>, crate::ProtoError> {
                match self {
                    Response::Error(m) => crate::codec::encode_payload(m),
                    $(Response::$name(m) => crate::codec::encode_payload(m),)*
                }
            }

            /// Decodes a reply payload for the message id `id`.
            pub fn decode(id: u16, payload: &[u8]) -> Result<Response, crate::ProtoError> {
                match MsgId::from_u16(id) {
                    Some(MsgId::Error) => Ok(Response::Error(crate::codec::decode_payload(payload)?)),
                    $(Some(MsgId::$name) => Ok(Response::$name(crate::codec::decode_payload(payload)?)),)*
                    None => Err(crate::ProtoError::UnknownMessage(id)),
                }
            }
        }
    };
}

messages! {
    /// Attach to the served tree.
    Mount = 1: MountReq => MountResp,
    /// Walk many components, creating nodes.
    Walk = 2: WalkReq => WalkResp,
    /// Walk many components, returning only attributes.
    WalkStat = 3: WalkStatReq => WalkStatResp,
    /// Attributes of a node.
    FStat = 4: FStatReq => FStatResp,
    /// Change attributes of a node.
    SetStat = 5: SetStatReq => SetStatResp,
    /// Open a node (donates a host fd).
    OpenAt = 6: OpenAtReq => OpenAtResp,
    /// Create and open a file (donates a host fd).
    OpenCreateAt = 7: OpenCreateAtReq => OpenCreateAtResp,
    /// Create a directory.
    MkdirAt = 8: MkdirAtReq => NewNodeResp,
    /// Create a special file.
    MknodAt = 9: MknodAtReq => NewNodeResp,
    /// Create a symlink.
    SymlinkAt = 10: SymlinkAtReq => NewNodeResp,
    /// Create a hard link.
    LinkAt = 11: LinkAtReq => NewNodeResp,
    /// Remove a file or directory.
    UnlinkAt = 12: UnlinkAtReq => EmptyResp,
    /// Rename.
    RenameAt = 13: RenameAtReq => EmptyResp,
    /// Read a symlink.
    ReadLinkAt = 14: ReadLinkAtReq => ReadLinkAtResp,
    /// Read directory entries.
    Getdents64 = 15: Getdents64Req => Getdents64Resp,
    /// Read at an offset.
    PRead = 16: PReadReq => PReadResp,
    /// Write at an offset.
    PWrite = 17: PWriteReq => PWriteResp,
    /// Flush to stable storage.
    FSync = 18: FSyncReq => EmptyResp,
    /// File system statistics.
    FStatFs = 19: FStatFsReq => FStatFsResp,
    /// Preallocate or punch space.
    FAllocate = 20: FAllocateReq => EmptyResp,
    /// Release nodes and handles.
    Close = 21: CloseReq => EmptyResp,
}

/// An open handle together with the host fd donated for it (if the server donated one).
///
/// Returned by the client's `open_at` and by a server's [`crate::Dispatcher::open_at`].
#[derive(Debug)]
pub struct Opened {
    /// The open handle id (for `PRead`, `PWrite`, `Getdents64`...; close it with `Close`).
    pub handle: HandleId,
    /// The donated host fd, opened with the requested flags.
    pub fd: Option<std::os::fd::OwnedFd>,
}

/// A newly created and opened file together with its donated host fd.
///
/// Returned by the client's `open_create_at` and by a server's
/// [`crate::Dispatcher::open_create_at`].
#[derive(Debug)]
pub struct CreatedFile {
    /// The new node.
    pub node: Inode,
    /// The open handle id.
    pub handle: HandleId,
    /// The donated host fd.
    pub fd: Option<std::os::fd::OwnedFd>,
}
