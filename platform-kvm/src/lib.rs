//! The KVM platform: application code in guest ring 3 of a VM whose page tables we build (filled by a later change).
