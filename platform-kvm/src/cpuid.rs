//! The CPUID the application sees, and the control-register and XCR0 features derived
//! from it.
//!
//! Starts from `KVM_GET_SUPPORTED_CPUID` and hides what this platform does not set up:
//! the hypervisor bit and KVM's paravirtual leaves (the application should see a plain
//! CPU, as under Linux), `FSGSBASE` (CR4.FSGSBASE stays clear so FS base changes only
//! through the Sentry), protection keys (CR4.PKE stays clear), and every XSAVE component
//! outside the XCR0 we load (AMX tiles, PKRU), so that XSAVE sizes in leaf 0xD agree
//! with what `xsave` in the guest writes.
//!
//! Nested KVM may report far fewer feature bits than the CPU has (seen here: no SSE3,
//! SSE4, AVX or XSAVE in leaf 1 while the host runs with all of them). Instructions run
//! natively in the guest, and KVM accepts the host's bits in `KVM_SET_CPUID2`, so the
//! feature words of leaves 1, 7 and 0x8000_0001 are the union of KVM's and the host's
//! bits (minus the hidden ones): the application sees the CPU the Sentry runs on, as it
//! would natively.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES, kvm_cpuid_entry2};
use kvm_ioctls::Kvm;
use platform::PlatformError;

use crate::layout::{CR4_BASE, CR4_SMAP, CR4_SMEP, CR4_UMIP};

/// XSAVE components this platform enables when the CPU has them: x87, SSE, AVX,
/// AVX-512 opmask, ZMM_Hi256, Hi16_ZMM.
const XCR0_WANTED: u64 = 0b1110_0111;

/// The guest CPU configuration.
#[derive(Debug)]
pub struct CpuConfig {
    /// Filtered CPUID for every vCPU.
    pub cpuid: CpuId,
    /// XCR0 loaded into every vCPU.
    pub xcr0: u64,
    /// CR4 loaded into every vCPU.
    pub cr4: u64,
    /// Guest physical address width.
    pub phys_bits: u32,
}

fn find(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> Option<&kvm_cpuid_entry2> {
    entries
        .iter()
        .find(|e| e.function == function && e.index == index)
}

/// Whether the host CPU follows AMD's rules for legacy entries: there `sysenter` in
/// 64-bit mode is an invalid opcode (#UD, so Linux gives `SIGILL`), where Intel CPUs
/// enter the kernel's 32-bit entry.
pub(crate) fn host_is_amd() -> bool {
    let l = core::arch::x86_64::__cpuid(0);
    let mut v = [0u8; 12];
    v[..4].copy_from_slice(&l.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&l.edx.to_le_bytes());
    v[8..].copy_from_slice(&l.ecx.to_le_bytes());
    matches!(&v, b"AuthenticAMD" | b"HygonGenuine")
}

/// ORs the host's feature bits into a feature leaf (see the module comment).
fn merge_host(e: &mut kvm_cpuid_entry2) {
    if !matches!((e.function, e.index), (1, 0) | (7, 0) | (0x8000_0001, 0)) {
        return;
    }
    let max = if e.function >= 0x8000_0000 {
        core::arch::x86_64::__cpuid(0x8000_0000).eax
    } else {
        core::arch::x86_64::__cpuid(0).eax
    };
    if e.function > max {
        return;
    }
    let h = core::arch::x86_64::__cpuid_count(e.function, e.index);
    match e.function {
        1 => {
            // Leaf 1 EBX holds APIC ids and counts: KVM's. OSXSAVE (bit 27) follows CR4.
            e.ecx |= h.ecx & !(1 << 27);
            e.edx |= h.edx;
        }
        7 => {
            e.ebx |= h.ebx;
            e.ecx |= h.ecx;
            e.edx |= h.edx;
        }
        _ => {
            e.ecx |= h.ecx;
            e.edx |= h.edx;
        }
    }
}

/// Builds the configuration from what KVM supports.
pub fn configure(kvm: &Kvm) -> Result<CpuConfig, PlatformError> {
    let mut supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| PlatformError::Unavailable(format!("KVM_GET_SUPPORTED_CPUID: {e}")))?;
    for e in supported.as_mut_slice() {
        merge_host(e);
    }
    let all = supported.as_slice();

    let leaf7 = find(all, 7, 0).copied().unwrap_or_default();
    let mut cr4 = CR4_BASE;
    if leaf7.ebx & (1 << 7) != 0 {
        cr4 |= CR4_SMEP;
    }
    if leaf7.ebx & (1 << 20) != 0 {
        cr4 |= CR4_SMAP;
    }
    if leaf7.ecx & (1 << 2) != 0 {
        cr4 |= CR4_UMIP;
    }
    let leaf1 = find(all, 1, 0).copied().unwrap_or_default();
    if leaf1.ecx & (1 << 26) == 0 {
        return Err(PlatformError::Unavailable(
            "the virtual CPU has no XSAVE".into(),
        ));
    }
    let xsave = find(all, 0xd, 0).copied().unwrap_or_default();
    let xcr0_supported = u64::from(xsave.eax) | (u64::from(xsave.edx) << 32);
    let mut xcr0 = xcr0_supported & XCR0_WANTED;
    if xcr0 & 0xe0 != 0xe0 {
        // The AVX-512 components go together or not at all.
        xcr0 &= !0xe0;
    }
    if xcr0 & 3 != 3 {
        return Err(PlatformError::Unavailable(
            "the virtual CPU lacks x87/SSE XSAVE state".into(),
        ));
    }
    let phys_bits = find(all, 0x8000_0008, 0)
        .map(|e| e.eax & 0xff)
        .unwrap_or(36);

    let mut out: Vec<kvm_cpuid_entry2> = Vec::with_capacity(all.len());
    for e in all {
        let mut e = *e;
        match (e.function, e.index) {
            (0x4000_0000..=0x4fff_ffff, _) => continue,
            (0x8000_0001, _) => {
                e.ecx &= !(1 << 2); // SVM
            }
            (1, _) => {
                e.ecx &= !((1 << 31) | (1 << 5) | (1 << 3)); // hypervisor, VMX, MONITOR
            }
            (7, 0) => {
                e.ebx &= !(1 << 0); // FSGSBASE
                e.ecx &= !((1 << 3) | (1 << 4)); // PKU, OSPKE
                e.edx &= !((1 << 22) | (1 << 24) | (1 << 25)); // AMX
                e.ecx &= !(1 << 16); // LA57: 4-level paging only
            }
            (0xd, 0) => {
                e.eax = xcr0 as u32;
                e.edx = (xcr0 >> 32) as u32;
            }
            (0xd, 1) => {
                e.ecx = 0; // no supervisor (XSS) components
                e.edx = 0;
            }
            (0xd, i) if i >= 2 && (i >= 64 || xcr0 & (1 << i) == 0) => continue,
            _ => {}
        }
        out.push(e);
    }
    let cpuid = CpuId::from_entries(&out)
        .map_err(|e| PlatformError::Internal(format!("cpuid entries: {e:?}")))?;
    Ok(CpuConfig {
        cpuid,
        xcr0,
        cr4,
        phys_bits,
    })
}
