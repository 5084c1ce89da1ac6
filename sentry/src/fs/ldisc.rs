//! The line discipline of the Sentry's pseudo-terminals (Linux's `n_tty`): what happens to
//! the bytes between a master and its replica.
//!
//! Bytes the master writes are the replica's input. They wait in a queue like Linux's tty
//! buffer ([`PENDING_MAX`]) and are processed into the read buffer while it has room
//! ([`N_TTY_BUF_SIZE`] - 1 bytes): input translation (`ISTRIP`, `INLCR`, `IGNCR`, `ICRNL`,
//! `IUCLC`), flow control characters (`IXON`, `IXANY`), signal characters (`ISIG`: `VINTR`,
//! `VQUIT`, `VSUSP`), canonical line editing (`ICANON`: `VERASE`, `VKILL`, `VWERASE`,
//! `VLNEXT`, `VREPRINT`, `VEOF`, `VEOL`, `VEOL2`) and echo (`ECHO`, `ECHOE`, `ECHOK`,
//! `ECHOKE`, `ECHONL`, `ECHOCTL`). Bytes the replica writes (and echoes) go through output
//! processing (`OPOST`: `ONLCR`, `OCRNL`, `ONOCR`, `ONLRET`, `OLCUC`, `XTABS`) into the
//! queue the master reads. The master's own `termios` is the replica's, as in Linux
//! (`tty_mode_ioctl` works on the pair's replica).
//!
//! This module is pure state: blocking, signals and `VMIN`/`VTIME` timing are the
//! caller's ([`super::pty`]).

use std::collections::VecDeque;

/// Linux's line discipline buffer: at most `N_TTY_BUF_SIZE - 1` bytes wait to be read.
pub const N_TTY_BUF_SIZE: usize = 4096;
/// Bytes written to a side beyond what its reader's buffer holds before the writer waits
/// (Linux's tty buffer of a pty; a native pty takes about 18 KiB this way).
pub const PENDING_MAX: usize = 16384;

pub use linux_abi::flags::termios::{
    NCCS, TERMIOS_SIZE, TERMIOS2_SIZE, cc, iflag, lflag, oflag, pkt,
};

/// `CBAUD`: the output speed in `c_cflag`.
const CBAUD: u32 = 0o10017;
/// `BOTHER`: the speed is in `c_ospeed`.
const BOTHER: u32 = 0o10000;

/// The kernel's `struct termios2` (`struct termios` is its first 36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    /// Input modes.
    pub iflag: u32,
    /// Output modes.
    pub oflag: u32,
    /// Control modes.
    pub cflag: u32,
    /// Local modes.
    pub lflag: u32,
    /// Line discipline number.
    pub line: u8,
    /// Control characters.
    pub cc: [u8; NCCS],
    /// Input speed.
    pub ispeed: u32,
    /// Output speed.
    pub ospeed: u32,
}

impl Default for Termios {
    /// Linux's `tty_std_termios` as a pty replica starts with: `ICRNL|IXON`,
    /// `OPOST|ONLCR`, `B38400|CS8|CREAD`, `ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|
    /// IEXTEN`, and `^C ^\ ^? ^U ^D` ... as control characters.
    fn default() -> Termios {
        Termios {
            iflag: iflag::ICRNL | iflag::IXON,
            oflag: oflag::OPOST | oflag::ONLCR,
            cflag: 0o277,
            lflag: 0o105073,
            line: 0,
            cc: [
                3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
            ],
            ispeed: 38400,
            ospeed: 38400,
        }
    }
}

impl Termios {
    /// The `struct termios` (36 bytes) or `struct termios2` (44) bytes.
    pub fn to_bytes(self, two: bool) -> Vec<u8> {
        let mut b = Vec::with_capacity(TERMIOS2_SIZE);
        for v in [self.iflag, self.oflag, self.cflag, self.lflag] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.push(self.line);
        b.extend_from_slice(&self.cc);
        if two {
            b.extend_from_slice(&self.ispeed.to_ne_bytes());
            b.extend_from_slice(&self.ospeed.to_ne_bytes());
        }
        b
    }

    /// Parses a `struct termios` (36 bytes; the speeds follow the baud bits of
    /// `c_cflag`) or `struct termios2` (44).
    pub fn from_bytes(b: &[u8]) -> Termios {
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&b[i..i + 4]);
            u32::from_ne_bytes(w)
        };
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..17 + NCCS]);
        let cflag = word(8);
        let (ispeed, ospeed) = if b.len() >= TERMIOS2_SIZE && cflag & CBAUD == BOTHER {
            (word(36), word(40))
        } else {
            let s = baud(cflag & CBAUD);
            (s, s)
        };
        Termios {
            iflag: word(0),
            oflag: word(4),
            cflag,
            lflag: word(12),
            line: b[16],
            cc,
            ispeed,
            ospeed,
        }
    }

    fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }

    fn o(&self, f: u32) -> bool {
        self.oflag & f != 0
    }

    fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }

    /// Whether the line discipline is in canonical mode.
    pub fn canonical(&self) -> bool {
        self.l(lflag::ICANON)
    }
}

/// The speed of a `B*` code (Linux's `baud_table`).
fn baud(code: u32) -> u32 {
    const TABLE: [u32; 16] = [
        0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
    ];
    const EXTRA: [u32; 15] = [
        57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000,
        2500000, 3000000, 3500000, 4000000,
    ];
    if code & BOTHER == 0 {
        TABLE[(code & 0xf) as usize]
    } else {
        ((code & 0xf) as usize)
            .checked_sub(1)
            .and_then(|i| EXTRA.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// A signal the line discipline raised for the terminal's foreground process group.
pub type Signal = i32;

/// The state of one pseudo-terminal's line discipline.
#[derive(Debug, Default)]
pub struct Ldisc {
    /// The replica's `termios` (the master's too).
    pub termios: Termios,
    /// `struct winsize`.
    pub winsize: [u8; 8],
    /// Written by the master, not yet processed (room in `ready` frees it).
    pending: VecDeque<u8>,
    /// Processed input the replica can read (in canonical mode, whole lines only).
    ready: VecDeque<u8>,
    /// Canonical mode: lengths of the complete lines in `ready` (0: an end of file).
    lines: VecDeque<usize>,
    /// Canonical mode: the line being edited.
    edit: Vec<u8>,
    /// `VLNEXT` was typed: the next character is literal.
    lnext: bool,
    /// Output the master reads.
    out: VecDeque<u8>,
    /// Echoes of the input being processed, not yet output: Linux commits them at the
    /// end of a batch of input, and a signal character discards them.
    echo: Vec<u8>,
    /// Output goes to `echo` (input is being processed).
    echoing: bool,
    /// The output column (for tab erasure and `ONOCR`).
    column: usize,
    /// The column where the line being edited started.
    canon_column: usize,
    /// Output stopped (`VSTOP`, `TCOOFF`).
    pub stopped: bool,
    /// Packet mode (`TIOCPKT`) of the master.
    pub packet: bool,
    /// Packet-mode status not yet read by the master.
    pub pkt_status: u8,
}

/// `iscntrl` of the C locale.
fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

const OUT_MAX: usize = N_TTY_BUF_SIZE - 1 + PENDING_MAX;

impl Ldisc {
    // ---- The master writes: the replica's input. ----

    /// Room for the master's writes.
    pub fn input_room(&self) -> usize {
        PENDING_MAX.saturating_sub(self.pending.len())
    }

    /// The master writes `data`: as much as fits is queued and processed. Returns the
    /// bytes taken; signals for the foreground group are added to `sigs`.
    pub fn master_write(&mut self, data: &[u8], sigs: &mut Vec<Signal>) -> usize {
        let n = data.len().min(self.input_room());
        self.pending.extend(&data[..n]);
        self.process_input(sigs);
        n
    }

    /// `TIOCSTI` on the replica: `c` is received as if typed, ahead of pending input
    /// (dropped when the read buffer is full, as Linux's `receive_buf` drops it).
    pub fn inject(&mut self, c: u8, sigs: &mut Vec<Signal>) {
        if self.input_len() >= N_TTY_BUF_SIZE - 1 {
            return;
        }
        self.echoing = true;
        self.receive(c, sigs);
        self.echoing = false;
        self.commit_echoes();
    }

    /// Bytes of input in the read buffer and the line being edited.
    fn input_len(&self) -> usize {
        self.ready.len() + self.edit.len()
    }

    /// Processes pending input while the read buffer has room.
    fn process_input(&mut self, sigs: &mut Vec<Signal>) {
        self.echoing = true;
        self.process_pending(sigs);
        self.echoing = false;
        self.commit_echoes();
    }

    fn process_pending(&mut self, sigs: &mut Vec<Signal>) {
        while let Some(&c) = self.pending.front() {
            let full = self.input_len() >= N_TTY_BUF_SIZE - 1;
            if full && (!self.termios.canonical() || !self.lines.is_empty()) {
                // Wait for the reader (Linux's `receive_room`).
                break;
            }
            self.pending.pop_front();
            // A full line without an end: the last character is overwritten, as in
            // Linux's canonical-mode overflow.
            if full {
                self.edit.pop();
            }
            self.receive(c, sigs);
        }
    }

    fn receive(&mut self, c: u8, sigs: &mut Vec<Signal>) {
        let t = self.termios;
        let mut c = c;
        if t.i(iflag::ISTRIP) {
            c &= 0x7f;
        }
        if t.i(iflag::IUCLC) && t.l(lflag::IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lnext {
            self.lnext = false;
            if t.l(lflag::ECHO) {
                self.echo_char(c);
            }
            self.put(c);
            return;
        }
        let cc = |i: usize| t.cc[i];
        if t.i(iflag::IXON) {
            if c == cc(cc::VSTART) {
                self.start();
                return;
            }
            if c == cc(cc::VSTOP) {
                self.stop();
                return;
            }
        }
        if t.l(lflag::ISIG) {
            let sig = if c == cc(cc::VINTR) {
                Some(linux_abi::signal::SIGINT)
            } else if c == cc(cc::VQUIT) {
                Some(linux_abi::signal::SIGQUIT)
            } else if c == cc(cc::VSUSP) {
                Some(linux_abi::signal::SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                if !t.l(lflag::NOFLSH) {
                    // Linux's `isig`: the echoes not yet output, what the master has
                    // not taken into its buffer, and the replica's read buffer go; the
                    // rest of the input written (after this character) stays.
                    self.echo.clear();
                    self.flush_output(false);
                    self.flush_input(false);
                }
                sigs.push(sig);
                if t.i(iflag::IXON) {
                    self.start();
                }
                if t.l(lflag::ECHO) {
                    self.echo_char(c);
                }
                return;
            }
        }
        if self.stopped && t.i(iflag::IXON) && t.i(iflag::IXANY) {
            self.start();
        }
        if c == b'\r' {
            if t.i(iflag::IGNCR) {
                return;
            }
            if t.i(iflag::ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(iflag::INLCR) {
            c = b'\r';
        }
        if t.canonical() {
            let iexten = t.l(lflag::IEXTEN);
            if c == cc(cc::VERASE) || c == cc(cc::VKILL) || (c == cc(cc::VWERASE) && iexten) {
                self.erase(c);
                return;
            }
            if c == cc(cc::VLNEXT) && iexten {
                self.lnext = true;
                if t.l(lflag::ECHO) && t.l(lflag::ECHOCTL) {
                    self.echo_raw(b"^\x08");
                }
                return;
            }
            if c == cc(cc::VREPRINT) && t.l(lflag::ECHO) && iexten {
                self.echo_char(c);
                self.output_char(b'\n');
                self.canon_column = self.column;
                for b in self.edit.clone() {
                    self.echo_char(b);
                }
                return;
            }
            if c == b'\n' {
                if t.l(lflag::ECHO) || t.l(lflag::ECHONL) {
                    self.output_char(b'\n');
                }
                self.edit.push(c);
                self.end_line();
                return;
            }
            if c == cc(cc::VEOF) {
                self.end_line();
                return;
            }
            if c == cc(cc::VEOL) || (c == cc(cc::VEOL2) && iexten) {
                if t.l(lflag::ECHO) {
                    self.echo_char(c);
                }
                self.edit.push(c);
                self.end_line();
                return;
            }
        }
        if t.l(lflag::ECHO) {
            if c == b'\n' {
                self.output_char(b'\n');
            } else {
                if self.edit.is_empty() {
                    self.canon_column = self.column;
                }
                self.echo_char(c);
            }
        }
        self.put(c);
    }

    fn put(&mut self, c: u8) {
        if self.termios.canonical() {
            self.edit.push(c);
        } else {
            self.ready.push_back(c);
        }
    }

    /// The line being edited is complete (with its delimiter, if any, already in it).
    fn end_line(&mut self) {
        self.lines.push_back(self.edit.len());
        self.ready.extend(self.edit.drain(..));
        self.canon_column = self.column;
    }

    /// `VERASE`, `VWERASE`, `VKILL` (Linux's `eraser`).
    fn erase(&mut self, c: u8) {
        let t = self.termios;
        if self.edit.is_empty() {
            return;
        }
        let (erase, werase) = (c == t.cc[cc::VERASE], c == t.cc[cc::VWERASE]);
        if !erase && !werase {
            if !t.l(lflag::ECHO) {
                self.edit.clear();
                return;
            }
            if !t.l(lflag::ECHOK) || !t.l(lflag::ECHOKE) || !t.l(lflag::ECHOE) {
                self.edit.clear();
                self.echo_char(c);
                if t.l(lflag::ECHOK) {
                    self.output_char(b'\n');
                }
                self.canon_column = self.column;
                return;
            }
        }
        let utf8 = t.i(iflag::IUTF8);
        let mut seen_alnums = 0;
        while !self.edit.is_empty() {
            // One character, with its UTF-8 continuation bytes.
            let mut k = self.edit.len() - 1;
            while utf8 && k > 0 && self.edit[k] & 0xc0 == 0x80 {
                k -= 1;
            }
            let ch = self.edit[k];
            if werase {
                if ch.is_ascii_alphanumeric() || ch == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            self.edit.truncate(k);
            if t.l(lflag::ECHO) {
                if erase && !t.l(lflag::ECHOE) {
                    self.echo_char(t.cc[cc::VERASE]);
                } else if ch == b'\t' {
                    // Back to where the tab started: the columns of what is left.
                    let col = self.line_column();
                    let width = ((col | 7) + 1).saturating_sub(col);
                    for _ in 0..width {
                        self.echo_raw(b"\x08");
                    }
                } else {
                    let cntrl = is_cntrl(ch);
                    if cntrl && t.l(lflag::ECHOCTL) {
                        self.echo_raw(b"\x08 \x08");
                    }
                    if !cntrl || t.l(lflag::ECHOCTL) {
                        self.echo_raw(b"\x08 \x08");
                    }
                }
            }
            if erase {
                break;
            }
        }
    }

    /// The echo column after the line being edited.
    fn line_column(&self) -> usize {
        let ctl = self.termios.l(lflag::ECHOCTL);
        self.edit.iter().fold(self.canon_column, |col, &b| {
            if b == b'\t' {
                (col | 7) + 1
            } else if is_cntrl(b) {
                if ctl { col + 2 } else { col }
            } else if self.termios.i(iflag::IUTF8) && b & 0xc0 == 0x80 {
                col
            } else {
                col + 1
            }
        })
    }

    /// Echoes `c`: a control character as `^X` with `ECHOCTL` (not a tab or newline).
    fn echo_char(&mut self, c: u8) {
        if self.termios.l(lflag::ECHOCTL) && is_cntrl(c) && c != b'\t' && c != b'\n' {
            self.echo_raw(&[b'^', c ^ 0o100]);
        } else {
            self.output_char(c);
        }
    }

    /// Echoes bytes without output processing (cursor motion of erasure, `^X`).
    fn echo_raw(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.room() == 0 {
                return;
            }
            match b {
                b'\x08' => self.column = self.column.saturating_sub(1),
                _ if is_cntrl(b) => {}
                _ => self.column += 1,
            }
            self.emit(&[b]);
        }
    }

    /// Room left for output (and pending echoes).
    fn room(&self) -> usize {
        OUT_MAX.saturating_sub(self.out.len() + self.echo.len())
    }

    /// Appends output, to the echo buffer while input is processed.
    fn emit(&mut self, bytes: &[u8]) {
        if self.echoing {
            self.echo.extend_from_slice(bytes);
        } else {
            self.out.extend(bytes);
        }
    }

    /// Outputs the pending echoes (the end of a batch of input).
    fn commit_echoes(&mut self) {
        let e = std::mem::take(&mut self.echo);
        self.out.extend(e);
    }

    /// Outputs one character with output processing (Linux's `do_output_char`); false
    /// when the master's queue has no room for it.
    fn output_char(&mut self, c: u8) -> bool {
        let room = self.room();
        let t = self.termios;
        if !t.o(oflag::OPOST) {
            if room == 0 {
                return false;
            }
            self.emit(&[c]);
            return true;
        }
        match c {
            b'\n' => {
                if t.o(oflag::ONLRET) {
                    self.column = 0;
                }
                if t.o(oflag::ONLCR) {
                    if room < 2 {
                        return false;
                    }
                    self.column = 0;
                    self.emit(b"\r\n");
                    return true;
                }
            }
            b'\r' => {
                if t.o(oflag::ONOCR) && self.column == 0 {
                    return true;
                }
                if t.o(oflag::OCRNL) {
                    if room == 0 {
                        return false;
                    }
                    if t.o(oflag::ONLRET) {
                        self.column = 0;
                    }
                    self.emit(b"\n");
                    return true;
                }
                self.column = 0;
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                if t.oflag & oflag::TABDLY == oflag::XTABS {
                    if room < spaces {
                        return false;
                    }
                    self.column += spaces;
                    self.emit(&[b' '; 8][..spaces]);
                    return true;
                }
                self.column += spaces;
            }
            b'\x08' => self.column = self.column.saturating_sub(1),
            _ if !is_cntrl(c) => {
                if room == 0 {
                    return false;
                }
                let c = if t.o(oflag::OLCUC) {
                    c.to_ascii_uppercase()
                } else {
                    c
                };
                if !(t.i(iflag::IUTF8) && c & 0xc0 == 0x80) {
                    self.column += 1;
                }
                self.emit(&[c]);
                return true;
            }
            _ => {}
        }
        if room == 0 {
            return false;
        }
        self.emit(&[c]);
        true
    }

    // ---- The replica reads. ----

    /// Whether a replica read would return something: a whole line (or end of file) in
    /// canonical mode, else at least `min` bytes.
    pub fn readable(&self, min: usize) -> bool {
        if self.termios.canonical() {
            !self.lines.is_empty()
        } else {
            self.ready.len() >= min.max(1)
        }
    }

    /// `FIONREAD` of the replica: the bytes of whole lines in canonical mode.
    pub fn input_available(&self) -> usize {
        if self.termios.canonical() {
            self.lines.iter().sum()
        } else {
            self.ready.len()
        }
    }

    /// A replica read into `buf`: in canonical mode at most one line (`Some(0)` for an end
    /// of file), else what is ready; `None` when nothing is. Freed room lets pending input
    /// in, which may raise signals.
    pub fn replica_read(&mut self, buf: &mut [u8], sigs: &mut Vec<Signal>) -> Option<usize> {
        let n = if self.termios.canonical() {
            let len = *self.lines.front()?;
            let n = len.min(buf.len());
            for (d, s) in buf.iter_mut().zip(self.ready.drain(..n)) {
                *d = s;
            }
            if n == len {
                self.lines.pop_front();
            } else if let Some(l) = self.lines.front_mut() {
                *l -= n;
            }
            n
        } else {
            if self.ready.is_empty() {
                return None;
            }
            let n = self.ready.len().min(buf.len());
            for (d, s) in buf.iter_mut().zip(self.ready.drain(..n)) {
                *d = s;
            }
            n
        };
        self.process_input(sigs);
        Some(n)
    }

    // ---- The replica writes: the master's input. ----

    /// Whether the replica may write now (output not stopped, room in the queue).
    /// Room for one character's expansion (a tab to eight spaces) is needed.
    pub fn output_room(&self) -> bool {
        !self.stopped && OUT_MAX.saturating_sub(self.out.len()) >= 8
    }

    /// The replica writes `data` (with output processing); returns the bytes taken.
    pub fn replica_write(&mut self, data: &[u8]) -> usize {
        if self.stopped {
            return 0;
        }
        let mut n = 0;
        for &c in data {
            if !self.output_char(c) {
                break;
            }
            n += 1;
        }
        n
    }

    // ---- The master reads. ----

    /// Whether the master has something to read.
    pub fn master_readable(&self) -> bool {
        !self.out.is_empty() || (self.packet && self.pkt_status != 0)
    }

    /// `FIONREAD` of the master (what Linux's master line discipline buffer holds).
    pub fn output_available(&self) -> usize {
        self.out.len().min(N_TTY_BUF_SIZE - 1)
    }

    /// A master read: in packet mode a status byte alone, or a 0 byte and data.
    pub fn master_read(&mut self, buf: &mut [u8]) -> Option<usize> {
        if buf.is_empty() {
            return Some(0);
        }
        if self.packet && self.pkt_status != 0 {
            buf[0] = self.pkt_status;
            self.pkt_status = 0;
            return Some(1);
        }
        if self.out.is_empty() {
            return None;
        }
        let skip = usize::from(self.packet);
        if skip == 1 {
            buf[0] = 0;
        }
        let n = self.out.len().min(buf.len() - skip);
        for (d, s) in buf[skip..].iter_mut().zip(self.out.drain(..n)) {
            *d = s;
        }
        Some(n + skip)
    }

    // ---- Control. ----

    /// Discards the replica's unread input: its read buffer and the line being edited
    /// (Linux's `n_tty_flush_buffer`), and with `pending` what the master wrote that was
    /// not processed yet (the tty buffer, as `TCIFLUSH` on the replica flushes it).
    pub fn flush_input(&mut self, pending: bool) {
        let had = !self.ready.is_empty() || !self.edit.is_empty();
        if pending {
            self.pending.clear();
        }
        self.ready.clear();
        self.lines.clear();
        self.edit.clear();
        self.lnext = false;
        if self.packet && had {
            self.pkt_status |= pkt::FLUSHREAD;
        }
    }

    /// Discards what the master wrote that was not processed yet (`TCOFLUSH` on the
    /// master: its driver's output is the replica's tty buffer).
    pub fn flush_pending_input(&mut self) {
        self.pending.clear();
    }

    /// Discards output the master has not read: all of it with `all` (`TCIFLUSH` on the
    /// master), else what lies beyond the master's read buffer: the replica's
    /// `TCOFLUSH` and signal characters flush the tty buffer between them (Linux's
    /// `pty_flush_buffer`), not what the master's line discipline already holds.
    pub fn flush_output(&mut self, all: bool) {
        let keep = if all { 0 } else { N_TTY_BUF_SIZE - 1 };
        let had = self.out.len() > keep;
        self.out.truncate(keep);
        if self.packet && had && !all {
            self.pkt_status |= pkt::FLUSHWRITE;
        }
    }

    /// Stops output (`VSTOP`, `TCOOFF`).
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            self.pkt_status = (self.pkt_status & !pkt::START) | pkt::STOP;
        }
    }

    /// Restarts output (`VSTART`, `TCOON`).
    pub fn start(&mut self) {
        if self.stopped {
            self.stopped = false;
            self.pkt_status = (self.pkt_status & !pkt::STOP) | pkt::START;
        }
    }

    /// Sends a flow control character to the master (`TCIOFF`, `TCION`).
    pub fn send_char(&mut self, c: u8) {
        if self.room() > 0 {
            self.out.push_back(c);
        }
    }

    /// New attributes (Linux's `n_tty_set_termios`): leaving canonical mode makes what was
    /// typed readable; entering it makes what is unread one line.
    pub fn set_termios(&mut self, new: Termios, sigs: &mut Vec<Signal>) {
        let old = self.termios;
        self.termios = new;
        if old.canonical() != new.canonical() {
            if new.canonical() {
                self.lines.clear();
                if !self.ready.is_empty() {
                    self.lines.push_back(self.ready.len());
                }
                self.canon_column = self.column;
            } else {
                self.ready.extend(self.edit.drain(..));
                self.lines.clear();
            }
            self.lnext = false;
        }
        if old.i(iflag::IXON) && !new.i(iflag::IXON) {
            self.start();
        }
        self.process_input(sigs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_abi::signal::{SIGINT, SIGTSTP};

    fn write(l: &mut Ldisc, s: &[u8]) -> Vec<Signal> {
        let mut sigs = Vec::new();
        assert_eq!(l.master_write(s, &mut sigs), s.len());
        sigs
    }

    fn read(l: &mut Ldisc) -> Option<Vec<u8>> {
        let mut buf = [0u8; 8192];
        let n = l.replica_read(&mut buf, &mut Vec::new())?;
        Some(buf[..n].to_vec())
    }

    fn echoed(l: &mut Ldisc) -> Vec<u8> {
        let mut buf = [0u8; 8192];
        let n = l.master_read(&mut buf).unwrap_or(0);
        buf[..n].to_vec()
    }

    fn raw(l: &mut Ldisc) {
        let mut t = l.termios;
        t.lflag &= !(lflag::ICANON | lflag::ECHO | lflag::ISIG | lflag::IEXTEN);
        t.iflag &= !(iflag::ICRNL | iflag::IXON);
        t.oflag &= !oflag::OPOST;
        l.set_termios(t, &mut Vec::new());
    }

    #[test]
    fn canonical_mode_reads_lines_and_echoes_with_crlf() {
        let mut l = Ldisc::default();
        write(&mut l, b"hel");
        assert_eq!(read(&mut l), None, "no line yet");
        write(&mut l, b"lo\rworld\n");
        assert_eq!(read(&mut l).unwrap(), b"hello\n", "ICRNL ends the line");
        assert_eq!(read(&mut l).unwrap(), b"world\n");
        assert_eq!(echoed(&mut l), b"hello\r\nworld\r\n", "ECHO with ONLCR");
    }

    #[test]
    fn erase_kill_and_word_erase_edit_the_line() {
        let mut l = Ldisc::default();
        write(&mut l, b"abc\x7fd\n");
        assert_eq!(read(&mut l).unwrap(), b"abd\n");
        assert_eq!(
            echoed(&mut l),
            b"abc\x08 \x08d\r\n",
            "ECHOE erases visually"
        );
        write(&mut l, b"junk\x15ok\n");
        assert_eq!(read(&mut l).unwrap(), b"ok\n", "VKILL drops the line");
        assert_eq!(
            echoed(&mut l),
            b"junk\x08 \x08\x08 \x08\x08 \x08\x08 \x08ok\r\n",
            "ECHOKE erases each character"
        );
        write(&mut l, b"one two  \x17three\n");
        assert_eq!(
            read(&mut l).unwrap(),
            b"one three\n",
            "VWERASE erases a word"
        );
        // A control character echoes as ^X and erases two columns.
        write(&mut l, b"\x01\x7f\n");
        assert_eq!(echoed(&mut l)[..], b"one two  \x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08three\r\n^A\x08 \x08\x08 \x08\r\n"[..]);
        assert_eq!(read(&mut l).unwrap(), b"\n");
    }

    #[test]
    fn kill_without_echoke_echoes_the_kill_character_and_newline() {
        let mut l = Ldisc::default();
        l.termios.lflag &= !lflag::ECHOKE;
        write(&mut l, b"ab\x15");
        assert_eq!(echoed(&mut l), b"ab^U\r\n");
        let mut l = Ldisc::default();
        l.termios.lflag &= !lflag::ECHOE;
        write(&mut l, b"ab\x7f");
        assert_eq!(echoed(&mut l), b"ab^?", "erase echoes itself without ECHOE");
    }

    #[test]
    fn eof_ends_a_line_without_itself_and_alone_is_end_of_file() {
        let mut l = Ldisc::default();
        write(&mut l, b"abc\x04\x04");
        assert_eq!(read(&mut l).unwrap(), b"abc");
        assert_eq!(read(&mut l).unwrap(), b"", "an empty line is end of file");
        assert_eq!(read(&mut l), None);
        assert_eq!(echoed(&mut l), b"abc", "VEOF is not echoed");
    }

    #[test]
    fn a_short_read_leaves_the_rest_of_the_line() {
        let mut l = Ldisc::default();
        write(&mut l, b"abcdef\n");
        assert_eq!(l.input_available(), 7);
        let mut b = [0u8; 4];
        assert_eq!(l.replica_read(&mut b, &mut Vec::new()), Some(4));
        assert_eq!(read(&mut l).unwrap(), b"ef\n");
    }

    #[test]
    fn signal_characters_flush_and_echo() {
        let mut l = Ldisc::default();
        let sigs = write(&mut l, b"partial\x03");
        assert_eq!(sigs, [SIGINT]);
        assert_eq!(l.input_available(), 0);
        assert_eq!(echoed(&mut l), b"^C", "queued echo flushed, ^C echoed");
        assert_eq!(write(&mut l, b"\x1a"), [SIGTSTP]);
        l.termios.lflag &= !lflag::ISIG;
        assert!(write(&mut l, b"\x03").is_empty(), "no ISIG, no signal");
        l.flush_input(true);
        l.termios.lflag |= lflag::ISIG | lflag::NOFLSH;
        write(&mut l, b"x\x03\n");
        assert_eq!(read(&mut l).unwrap(), b"x\n", "NOFLSH keeps the input");
    }

    #[test]
    fn a_signal_character_discards_only_echoes_not_yet_output() {
        let mut l = Ldisc::default();
        write(&mut l, b"before");
        assert_eq!(write(&mut l, b"same\x03after"), [SIGINT]);
        assert_eq!(
            echoed(&mut l),
            b"before^Cafter",
            "an earlier write's echo was output; this one's not yet"
        );
        write(&mut l, b"\n");
        assert_eq!(read(&mut l).unwrap(), b"after\n", "input after ^C stays");
    }

    #[test]
    fn input_translation() {
        let mut l = Ldisc::default();
        raw(&mut l);
        write(&mut l, b"a\rb\n");
        assert_eq!(read(&mut l).unwrap(), b"a\rb\n", "raw: no translation");
        let mut t = l.termios;
        t.iflag |= iflag::INLCR;
        l.set_termios(t, &mut Vec::new());
        write(&mut l, b"\n");
        assert_eq!(read(&mut l).unwrap(), b"\r");
        t.iflag = iflag::IGNCR;
        l.set_termios(t, &mut Vec::new());
        write(&mut l, b"a\rb");
        assert_eq!(read(&mut l).unwrap(), b"ab");
    }

    #[test]
    fn output_processing() {
        let mut l = Ldisc::default();
        assert_eq!(l.replica_write(b"a\nb"), 3);
        assert_eq!(echoed(&mut l), b"a\r\nb");
        l.termios.oflag |= oflag::XTABS;
        l.replica_write(b"\tx\r\r");
        assert_eq!(
            echoed(&mut l),
            b"       x\r\r",
            "column 1: seven spaces to the stop"
        );
        l.termios.oflag |= oflag::ONOCR | oflag::OCRNL;
        l.replica_write(b"\ry\r");
        assert_eq!(echoed(&mut l), b"y\n", "ONOCR drops a CR at column 0");
        l.termios.oflag = 0;
        l.replica_write(b"\n");
        assert_eq!(echoed(&mut l), b"\n", "no OPOST, no processing");
    }

    #[test]
    fn echo_variants() {
        let mut l = Ldisc::default();
        raw(&mut l);
        let mut t = l.termios;
        t.lflag |= lflag::ECHO | lflag::ECHOCTL;
        l.set_termios(t, &mut Vec::new());
        write(&mut l, b"a\r\x1b\t\n");
        assert_eq!(
            echoed(&mut l),
            b"a^M^[\t\n",
            "ECHOCTL, but not tab or newline"
        );
        t.lflag &= !lflag::ECHO;
        t.lflag |= lflag::ICANON | lflag::ECHONL;
        l.set_termios(t, &mut Vec::new());
        read(&mut l);
        write(&mut l, b"quiet\n");
        assert_eq!(echoed(&mut l), b"\n", "ECHONL echoes only the newline");
    }

    #[test]
    fn flow_control_stops_output() {
        let mut l = Ldisc::default();
        write(&mut l, b"\x13");
        assert!(!l.output_room());
        assert_eq!(l.replica_write(b"x"), 0);
        write(&mut l, b"\x11");
        assert_eq!(l.replica_write(b"x"), 1);
        assert_eq!(l.input_available(), 0, "VSTART/VSTOP are not input");
    }

    #[test]
    fn lnext_takes_the_next_character_literally() {
        let mut l = Ldisc::default();
        write(&mut l, b"\x16\x03\x16\x7f\n");
        assert_eq!(read(&mut l).unwrap(), b"\x03\x7f\n");
        assert_eq!(echoed(&mut l), b"^\x08^C^\x08^?\r\n");
    }

    #[test]
    fn queues_are_bounded_as_linux() {
        let mut l = Ldisc::default();
        raw(&mut l);
        let big = vec![b'a'; 100_000];
        let mut sigs = Vec::new();
        let mut total = 0;
        loop {
            let n = l.master_write(&big, &mut sigs);
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(
            total,
            N_TTY_BUF_SIZE - 1 + PENDING_MAX,
            "full: the writer waits"
        );
        assert_eq!(l.input_available(), N_TTY_BUF_SIZE - 1);
        let mut buf = vec![0u8; 100];
        assert_eq!(l.replica_read(&mut buf, &mut sigs), Some(100));
        assert_eq!(
            l.input_available(),
            N_TTY_BUF_SIZE - 1,
            "pending input moves in"
        );
        assert_eq!(l.master_write(b"b", &mut sigs), 1);
        let out = l.replica_write(&big);
        assert_eq!(out, OUT_MAX);
        assert_eq!(l.output_available(), N_TTY_BUF_SIZE - 1);
        assert!(!l.output_room());
    }

    #[test]
    fn a_full_line_keeps_its_end() {
        let mut l = Ldisc::default();
        l.termios.lflag &= !lflag::ECHO;
        let long = vec![b'x'; 5000];
        write(&mut l, &long);
        write(&mut l, b"\n");
        let line = read(&mut l).unwrap();
        assert_eq!(line.len(), N_TTY_BUF_SIZE - 1);
        assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn switching_modes_moves_pending_input() {
        let mut l = Ldisc::default();
        write(&mut l, b"typed");
        let mut t = l.termios;
        t.lflag &= !lflag::ICANON;
        l.set_termios(t, &mut Vec::new());
        assert_eq!(read(&mut l).unwrap(), b"typed", "leaving canonical mode");
        write(&mut l, b"raw");
        t.lflag |= lflag::ICANON;
        l.set_termios(t, &mut Vec::new());
        assert_eq!(read(&mut l).unwrap(), b"raw", "entering it: one line");
    }

    #[test]
    fn packet_mode_prefixes_data_and_reports_flushes() {
        let mut l = Ldisc {
            packet: true,
            ..Ldisc::default()
        };
        l.replica_write(b"hi");
        assert_eq!(echoed(&mut l), b"\0hi");
        // What the master's buffer holds stays; the rest is flushed.
        assert_eq!(l.replica_write(&[b'x'; 5000]), 5000);
        l.flush_output(false);
        assert_eq!(echoed(&mut l), [pkt::FLUSHWRITE]);
        let mut buf = [0u8; 8192];
        assert_eq!(l.master_read(&mut buf), Some(N_TTY_BUF_SIZE));
        assert_eq!(buf[0], 0);
    }

    #[test]
    fn termios_round_trips_and_speeds_follow_cflag() {
        let t = Termios::default();
        let b = t.to_bytes(false);
        assert_eq!(b.len(), TERMIOS_SIZE);
        assert_eq!(Termios::from_bytes(&b), t);
        let b2 = t.to_bytes(true);
        assert_eq!(b2.len(), TERMIOS2_SIZE);
        let mut t2 = t;
        t2.cflag = (t2.cflag & !CBAUD) | BOTHER;
        t2.ispeed = 12345;
        t2.ospeed = 12345;
        assert_eq!(Termios::from_bytes(&t2.to_bytes(true)), t2);
    }
}
