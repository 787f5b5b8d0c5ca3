//! A line-oriented file read in pieces of whole lines, each handed on as soon as it is read:
//! the reader of `NsEnter`'s [`HostFs::read_mountinfo_pieces`](hostexec_api::HostFs::read_mountinfo_pieces).
//!
//! The kernel generates `/proc/PID/mountinfo` as it is read, a page at a time (seq_file's
//! buffer starts at one page and is only grown for a single record that does not fit; see
//! `seq_read_iter` in the kernel's `fs/seq_file.c`), at about a microsecond per mount. A
//! caller that parses and formats a piece while the kernel generates the next one hides its
//! own work behind the kernel's, instead of adding it after a whole-table read.

use std::io::{self, Read};

/// How many bytes a piece holds (about 350 mounts of a typical table): small enough that the
/// work left after the last read is short, large enough that handing pieces on costs little.
pub(crate) const PIECE: usize = 32 * 1024;

/// The room below which a piece is handed on rather than read into: seq_file answers a read
/// with at most its buffer (one page for normal lines), so a smaller read is a wasted call.
const MIN_READ: usize = 8 * 1024;

/// Reads `file` to its end and calls `piece` with its bytes in order, each piece ending with
/// a newline (the last one ends where the file does). A line longer than [`PIECE`] is handed
/// on whole, in a piece of its own size. The pieces joined are the file's bytes.
pub(crate) fn read_pieces(
    file: &mut impl Read,
    piece_size: usize,
    piece: &mut dyn FnMut(Vec<u8>),
) -> io::Result<()> {
    let size = piece_size.max(MIN_READ * 2);
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    loop {
        if buf.len() - filled < MIN_READ {
            match buf[..filled].iter().rposition(|&b| b == b'\n') {
                Some(nl) => {
                    // The partial line after the newline starts the next piece.
                    let mut next = vec![0u8; size.max(filled - nl - 1 + MIN_READ)];
                    next[..filled - nl - 1].copy_from_slice(&buf[nl + 1..filled]);
                    filled -= nl + 1;
                    buf.truncate(nl + 1);
                    piece(std::mem::replace(&mut buf, next));
                }
                // One line fills the piece: room for more of it.
                None => buf.resize(buf.len() * 2, 0),
            }
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if filled > 0 {
        buf.truncate(filled);
        piece(buf);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that answers at most `step` bytes per read, as seq_file answers a page.
    struct Stepped<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Stepped<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.step).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn pieces(data: &[u8], step: usize, size: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        read_pieces(&mut Stepped { data, step }, size, &mut |p| got.push(p)).unwrap();
        got
    }

    #[test]
    fn pieces_are_whole_lines_and_join_to_the_file() {
        let mut data = Vec::new();
        for i in 0..5_000 {
            // Lines of varied length, one far longer than a piece.
            let len = if i == 1_234 { 100_000 } else { 20 + i % 300 };
            data.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            data.push(b'\n');
        }
        for (step, size) in [
            (4096, PIECE),
            (1, 16 * 1024),
            (100_000, PIECE),
            (4093, 20_000),
        ] {
            let got = pieces(&data, step, size);
            assert!(got.len() > 10, "{} pieces", got.len());
            for p in &got {
                assert_eq!(p.last(), Some(&b'\n'));
                assert!(!p.is_empty());
            }
            assert_eq!(got.concat(), data, "step {step}, size {size}");
        }
    }

    #[test]
    fn a_file_without_a_final_newline_ends_its_last_piece_where_it_ends() {
        let data = b"one\ntwo\nthree";
        let got = pieces(data, 3, 0);
        assert_eq!(got.concat(), data);
        assert_eq!(got.last().unwrap().last(), Some(&b'e'));
        assert!(pieces(b"", 4096, PIECE).is_empty());
    }

    #[test]
    fn a_read_error_is_returned() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(5))
            }
        }
        let e = read_pieces(&mut Failing, PIECE, &mut |_| {}).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5));
    }
}
