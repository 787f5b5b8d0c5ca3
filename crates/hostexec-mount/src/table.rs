//! The mount table read in pieces and parsed as they arrive.

use hostexec_api::HostFs;

use crate::mountinfo::{parse_mountinfo_piece, MountInfo};
use crate::MountError;

/// Reads `fs`'s mount table with
/// [`HostFs::read_mountinfo_pieces`](hostexec_api::HostFs::read_mountinfo_pieces) and parses
/// each piece on the caller's task while the backend reads the next, handing each piece's
/// entries to `each` in order (`each` may take them out of the vector, which is reused).
///
/// Linux generates `/proc/PID/mountinfo` as it is read, about a microsecond per mount, which
/// is more than the parse takes: with a backend that reads in pieces (`hostexec-nsenter`),
/// little of the parse is left when the read ends. The entries and errors are those of
/// [`parse_mountinfo`](crate::mountinfo::parse_mountinfo) of
/// [`HostFs::read_mountinfo`](hostexec_api::HostFs::read_mountinfo)'s bytes (a line that does
/// not parse is reported with its number in the whole table), except that a line that does
/// not parse is reported as soon as its piece arrives, before the rest is read. `each` is
/// only called with entries of pieces that parsed; on an error, those already handed over are
/// no table.
///
/// [`Mount::list`](crate::Mount::list) is this, with the entries collected.
pub async fn read_mount_table<F: HostFs + ?Sized>(
    fs: &F,
    mut each: impl FnMut(&mut Vec<MountInfo>),
) -> Result<(), MountError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let read = fs.read_mountinfo_pieces(Box::new(move |piece| {
        // Nobody receives only after a parse error, which is what is reported then.
        let _ = tx.send(piece);
    }));
    tokio::pin!(read);
    let mut lines = 0;
    let mut entries = Vec::new();
    let mut parse = |piece: Vec<u8>| -> Result<(), MountError> {
        parse_mountinfo_piece(&piece, &mut lines, &mut entries)?;
        each(&mut entries);
        entries.clear();
        Ok(())
    };
    loop {
        tokio::select! {
            // Pieces first: the read's result is only wanted once they are in.
            biased;
            Some(piece) = rx.recv() => parse(piece)?,
            r = &mut read => {
                r?;
                // Every piece was handed over before the read returned (the contract), so
                // what is left is in the channel now, whether or not the backend still
                // holds the sender.
                while let Ok(piece) = rx.try_recv() {
                    parse(piece)?;
                }
                return Ok(());
            }
        }
    }
}
