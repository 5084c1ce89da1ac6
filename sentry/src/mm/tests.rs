//! Unit tests of the memory manager over a recording fake address space.
