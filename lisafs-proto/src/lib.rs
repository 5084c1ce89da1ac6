//! The lisafs-style file protocol: messages, framing, FD passing, client and server halves (filled by a later change).
