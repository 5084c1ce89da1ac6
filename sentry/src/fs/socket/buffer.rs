//! The receive buffer of a Unix socket: a queue of messages with a byte capacity.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use super::*;
use crate::fs::file::OpenFile;

use crate::waiter::{Events, WaitQueue, events};

/// One message in a receive buffer.
#[derive(Debug, Default)]
pub struct Message {
    /// The bytes (what is left of them, on a stream).
    pub data: Vec<u8>,
    /// Passed file descriptions (`SCM_RIGHTS`).
    pub rights: Vec<Arc<OpenFile>>,
    /// The sender's credentials.
    pub creds: Ucred,
    /// The sender's bound name (datagrams).
    pub from: Option<Vec<u8>>,
}

#[derive(Debug)]
pub(super) struct BufState {
    pub(super) msgs: VecDeque<Message>,
    pub(super) bytes: usize,
    pub(super) capacity: usize,
    /// The reading socket is open (and not shut down for reading).
    pub(super) reader: bool,
    /// Connected writers (streams: the peer); datagram buffers count none.
    pub(super) writers: usize,
    /// Some writer was connected (a stream that lost its writer reads end of file).
    pub(super) had_writer: bool,
}

/// A receive buffer (see the module documentation).
#[derive(Debug)]
pub struct Buffer {
    pub(super) state: Mutex<BufState>,
    /// The reader socket's queue (told about data and hang-ups).
    pub(super) reader_q: Weak<WaitQueue>,
    /// Told when space is freed or the reader goes away (for writers).
    pub(super) space: WaitQueue,
}

impl Buffer {
    pub(super) fn new(reader_q: &Arc<WaitQueue>) -> Arc<Buffer> {
        Arc::new(Buffer {
            state: Mutex::new(BufState {
                msgs: VecDeque::new(),
                bytes: 0,
                capacity: DEFAULT_BUF,
                reader: true,
                writers: 0,
                had_writer: false,
            }),
            reader_q: Arc::downgrade(reader_q),
            space: WaitQueue::new(),
        })
    }

    pub(super) fn tell_reader(&self, ev: Events) {
        if let Some(q) = self.reader_q.upgrade() {
            q.notify(ev);
        }
    }

    pub(super) fn add_writer(&self) {
        let mut s = self.state.lock();
        s.writers += 1;
        s.had_writer = true;
    }

    pub(super) fn close_writer(&self) {
        {
            let mut s = self.state.lock();
            s.writers = s.writers.saturating_sub(1);
        }
        self.tell_reader(events::POLLIN | events::POLLRDHUP | events::POLLHUP);
    }

    pub(super) fn close_reader(&self) {
        {
            let mut s = self.state.lock();
            s.reader = false;
        }
        self.space.notify(events::ALL);
    }

    pub(super) fn has_space(&self, need: usize) -> bool {
        let s = self.state.lock();
        s.bytes == 0 || s.bytes + need <= s.capacity
    }
}
