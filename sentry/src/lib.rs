//! The rsentry kernel: tasks, memory manager, VFS, signals and system calls (filled by a later change).
