//! Copies between Rust buffers and application memory.
//!
//! Application memory is a `MAP_SHARED` mapping that application threads (stub
//! processes, vCPUs) write while the Sentry copies from or to it. A plain `memcpy` there
//! is a data race in Rust's memory model: the compiler may assume nobody else writes the
//! source, and may split, merge, repeat or elide accesses. These routines access the
//! shared side only through relaxed atomic loads and stores (8 bytes at a time where the
//! address is aligned, single bytes for the unaligned head and tail), which is defined
//! behaviour under concurrent writes and compiles to plain `mov`s. The private side is an
//! ordinary Rust slice. Like `vm-memory`'s volatile slices, a concurrent writer may leave
//! a torn mix of old and new bytes in the copy, which is what Linux's `copy_from_user`
//! gives too; nothing more is promised.
//!
//! This module and `memory.rs` are the crate's only `unsafe` code.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

const WORD: usize = std::mem::size_of::<u64>();

/// Splits `[addr, addr+len)` into an unaligned byte head, a run of aligned words and a
/// byte tail: returns (head bytes, words).
fn split(addr: usize, len: usize) -> (usize, usize) {
    let head = addr.wrapping_neg() % WORD;
    if head >= len {
        return (len, 0);
    }
    (head, (len - head) / WORD)
}

/// Copies `dst.len()` bytes from shared memory at `src` into `dst`.
///
/// # Safety
/// `src..src+dst.len()` must lie inside a live, readable mapping for the whole call, and
/// every access to it from Rust code must be atomic (as in this module).
pub(crate) unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    let len = dst.len();
    let (head, words) = split(src as usize, len);
    let mut i = 0;
    while i < head {
        // SAFETY: `src + i` is inside the range the caller vouches for; AtomicU8 has
        // alignment 1.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Ordering::Relaxed);
        i += 1;
    }
    let body = &mut dst[head..head + words * WORD];
    for (w, out) in body.chunks_exact_mut(WORD).enumerate() {
        // SAFETY: `src + head + 8w` is 8-byte aligned (past the head) and its 8 bytes
        // are inside the range.
        let v = unsafe { AtomicU64::from_ptr(src.add(head + w * WORD).cast::<u64>().cast_mut()) }
            .load(Ordering::Relaxed);
        out.copy_from_slice(&v.to_ne_bytes());
    }
    i = head + words * WORD;
    while i < len {
        // SAFETY: as for the head.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Ordering::Relaxed);
        i += 1;
    }
}

/// Copies `src` into shared memory at `dst`.
///
/// # Safety
/// `dst..dst+src.len()` must lie inside a live, writable mapping for the whole call, and
/// every access to it from Rust code must be atomic (as in this module).
pub(crate) unsafe fn copy_to_shared(src: &[u8], dst: *mut u8) {
    let len = src.len();
    let (head, words) = split(dst as usize, len);
    for (i, &b) in src.iter().enumerate().take(head) {
        // SAFETY: `dst + i` is inside the caller's range; AtomicU8 has alignment 1.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(b, Ordering::Relaxed);
    }
    let body = &src[head..head + words * WORD];
    for (w, chunk) in body.chunks_exact(WORD).enumerate() {
        let mut b = [0u8; WORD];
        b.copy_from_slice(chunk);
        // SAFETY: `dst + head + 8w` is 8-byte aligned (past the head) and its 8 bytes
        // are inside the range.
        unsafe { AtomicU64::from_ptr(dst.add(head + w * WORD).cast::<u64>()) }
            .store(u64::from_ne_bytes(b), Ordering::Relaxed);
    }
    for (i, &b) in src.iter().enumerate().skip(head + words * WORD) {
        // SAFETY: as for the head.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(b, Ordering::Relaxed);
    }
}

/// Sets `len` bytes of shared memory at `dst` to zero.
///
/// # Safety
/// As for [`copy_to_shared`].
pub(crate) unsafe fn zero_shared(dst: *mut u8, len: usize) {
    let (head, words) = split(dst as usize, len);
    for i in (0..head).chain(head + words * WORD..len) {
        // SAFETY: `dst + i` is inside the caller's range.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(0, Ordering::Relaxed);
    }
    for w in 0..words {
        // SAFETY: aligned and inside the range, as in `copy_to_shared`.
        unsafe { AtomicU64::from_ptr(dst.add(head + w * WORD).cast::<u64>()) }
            .store(0, Ordering::Relaxed);
    }
}

/// Copies `len` bytes between two non-overlapping ranges of shared memory.
///
/// # Safety
/// Both ranges must lie inside live mappings (the source readable, the destination
/// writable) for the whole call and must not overlap; all Rust accesses to them atomic.
pub(crate) unsafe fn copy_shared(src: *const u8, dst: *mut u8, len: usize) {
    // Through a small stack buffer: the two ranges need not share an alignment.
    let mut buf = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len());
        // SAFETY: `src + done .. + n` and `dst + done .. + n` are inside the caller's
        // ranges.
        unsafe {
            copy_from_shared(src.add(done), &mut buf[..n]);
            copy_to_shared(&buf[..n], dst.add(done));
        }
        done += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alignment_and_length_round_trips() {
        let mut shared = vec![0u8; 64];
        let pattern: Vec<u8> = (1..=40).collect();
        for start in 0..16 {
            for len in 0..=40 {
                shared.iter_mut().for_each(|b| *b = 0xee);
                let p = shared.as_mut_ptr();
                // SAFETY: `start + len <= 56 < 64`, inside `shared`, which nothing else
                // touches during the calls.
                unsafe { copy_to_shared(&pattern[..len], p.add(start)) };
                assert!(shared[..start].iter().all(|&b| b == 0xee), "{start} {len}");
                assert_eq!(&shared[start..start + len], &pattern[..len]);
                assert!(shared[start + len..].iter().all(|&b| b == 0xee));
                let mut out = vec![0u8; len];
                // SAFETY: as above.
                unsafe { copy_from_shared(p.add(start), &mut out) };
                assert_eq!(out, &pattern[..len]);
                // SAFETY: as above.
                unsafe { zero_shared(p.add(start), len) };
                assert!(shared[start..start + len].iter().all(|&b| b == 0));
                assert!(shared[start + len..].iter().all(|&b| b == 0xee));
            }
        }
    }
}
