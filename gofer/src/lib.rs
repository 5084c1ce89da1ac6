//! Serves a host directory tree over `lisafs-proto`, confined to the sandbox root (filled by a later change).
