//! The ptrace platform: stub processes traced with PTRACE_SYSEMU (filled by a later change).
