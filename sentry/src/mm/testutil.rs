//! Test helpers: a memory manager over a fake address space that records its mappings.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use platform::{AddressSpace, MemoryFile, PlatformError, Protection};

use super::{MemoryManager, PAGE};

/// An address space that records its mappings (page -> (file offset, prot)).
#[derive(Debug, Default)]
pub(crate) struct FakeAs {
    pages: Mutex<BTreeMap<u64, (u64, Protection)>>,
    /// Makes the next unmaps fail (as a host error would).
    pub(crate) fail_unmap: std::sync::atomic::AtomicBool,
}

impl AddressSpace for FakeAs {
    fn map_file(
        &self,
        addr: u64,
        off: u64,
        len: u64,
        prot: Protection,
    ) -> Result<(), PlatformError> {
        let mut p = self.pages.lock();
        for i in 0..len / PAGE {
            p.insert(addr + i * PAGE, (off + i * PAGE, prot));
        }
        Ok(())
    }
    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        // As the real platforms: nothing below the lowest user address.
        if addr < 0x10000 || self.fail_unmap.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(PlatformError::InvalidArgument(
                "range outside the user address range",
            ));
        }
        let mut p = self.pages.lock();
        let keys: Vec<u64> = p.range(addr..addr + len).map(|(&k, _)| k).collect();
        for k in keys {
            p.remove(&k);
        }
        Ok(())
    }
    fn release(&self) {}
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl FakeAs {
    pub(crate) fn prot(&self, addr: u64) -> Option<Protection> {
        self.pages.lock().get(&addr).map(|e| e.1)
    }
}

pub(crate) fn new_mm() -> (MemoryManager, Arc<FakeAs>) {
    let mf = Arc::new(MemoryFile::new("mm-test", 1 << 30).unwrap());
    let fake = Arc::new(FakeAs::default());
    let mm = MemoryManager::with_address_space(mf, fake.clone(), 0x10000, 0x7fff_ffff_f000);
    (mm, fake)
}
