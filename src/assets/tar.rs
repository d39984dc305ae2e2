//! POSIX ustar archives (IEEE Std 1003.1, `pax` "ustar Interchange Format"), written and read
//! without I/O: [`header`] makes one entry's 512-byte header, [`padding`] and [`END`] finish
//! entries and the archive, and [`Reader`] parses an archive pushed to it in pieces of any size,
//! so that neither side ever holds a whole archive.
//!
//! Only what document archives need: regular files (and, when read, directories, skipped) with
//! names of at most 100 bytes, so no `prefix`, pax or GNU long-name extensions are written.
//! Reading accepts a `prefix` (joined as `prefix/name`) and refuses every other entry type.

use thiserror::Error;

/// The size of a header and the unit every entry's data is padded to.
pub const BLOCK: usize = 512;
/// Longest entry name written (the `name` field).
pub const MAX_NAME: usize = 100;
/// Largest entry size the 11 octal digits of the `size` field hold (8 GiB - 1).
pub const MAX_SIZE: u64 = 0o777_7777_7777;
/// The end of an archive: two blocks of zeros.
pub const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Why an archive could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TarError {
    /// A name is empty, longer than the field, or not UTF-8.
    #[error("entry name {0:?} is empty, longer than 100 bytes or not UTF-8")]
    BadName(String),
    /// A size does not fit the field.
    #[error("entry size {0} is larger than a ustar entry holds")]
    TooLarge(u64),
    /// A header's checksum is not the sum of its bytes.
    #[error("the header at byte {0} has a wrong checksum")]
    Checksum(u64),
    /// A header is not a ustar header, or a numeric field is not octal.
    #[error("the header at byte {at} is not a ustar header: {why}")]
    BadHeader {
        /// Offset of the header in the archive.
        at: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// An entry is neither a regular file nor a directory (links, devices, pax or GNU
    /// extension headers).
    #[error("entry {name:?} is of type {kind:?}: only regular files are read")]
    Unsupported {
        /// The entry's name.
        name: String,
        /// Its type flag.
        kind: char,
    },
    /// Bytes other than zeros follow the end of the archive.
    #[error("data after the end of the archive")]
    TrailingData,
    /// The input ended inside an entry or before the end blocks.
    #[error("the archive ends early")]
    Truncated,
}

/// Writes `value` as `width - 1` octal digits and a NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    field[..width].copy_from_slice(digits.as_bytes());
    field[width] = 0;
}

/// The ustar header of a regular file `name` of `size` bytes, modified at `mtime` (unix
/// seconds), mode 0644, owned by uid and gid 0.
pub fn header(name: &str, size: u64, mtime: u64) -> Result<[u8; BLOCK], TarError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(TarError::BadName(name.to_owned()));
    }
    if size > MAX_SIZE {
        return Err(TarError::TooLarge(size));
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime.min(MAX_SIZE));
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    // The checksum is the sum of the header's bytes with its own field read as spaces,
    // written as six octal digits, a NUL and a space.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let digits = format!("{sum:06o}");
    h[148..154].copy_from_slice(digits.as_bytes());
    h[154] = 0;
    h[155] = b' ';
    Ok(h)
}

/// Zero bytes after `size` bytes of data, up to the next block.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// The bytes one entry of `size` takes: its header, data and padding.
pub fn entry_len(size: u64) -> u64 {
    BLOCK as u64 + size + padding(size) as u64
}

/// The bytes of a whole archive of entries of `sizes`, with its end blocks.
pub fn archive_len(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().map(entry_len).sum::<u64>() + END.len() as u64
}

/// What the [`Reader`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A regular file begins: its data follows as [`Event::Data`], then [`Event::EntryEnd`].
    Entry {
        /// Its name (`prefix/name` when the header has a prefix).
        name: String,
        /// Its size in bytes.
        size: u64,
    },
    /// Some of the current entry's data (never empty).
    Data(&'a [u8]),
    /// The current entry's data is complete.
    EntryEnd,
    /// The end blocks were read: nothing but zeros may follow.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Gathering a header (or the first end block).
    Header,
    /// `left` bytes of the current entry's data to go.
    Data { left: u64 },
    /// The current entry's data ended: report it, then skip `pad` bytes.
    EntryEnd { pad: usize },
    /// Skipping `left` bytes of padding.
    Padding { left: usize },
    /// One zero block read: the next must be zeros too.
    SecondEnd,
    /// The archive ended.
    Done,
}

/// An incremental ustar parser: push bytes with [`Reader::step`] and act on each event.
#[derive(Debug)]
pub struct Reader {
    state: State,
    block: Vec<u8>,
    /// Bytes consumed so far.
    offset: u64,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads an octal field: digits, then NULs or spaces (leading spaces allowed).
fn read_octal(field: &[u8]) -> Option<u64> {
    let text = field
        .iter()
        .position(|&b| b == 0)
        .map_or(field, |end| &field[..end]);
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn field_str(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end]).ok()
}

impl Reader {
    /// A reader at the start of an archive.
    pub fn new() -> Reader {
        Reader {
            state: State::Header,
            block: Vec::with_capacity(BLOCK),
            offset: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the end blocks were read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads from `input` up to the next event: answers how many bytes it consumed and the
    /// event, or `None` when it needs more input (all of `input` was consumed then). Call
    /// again with the rest of `input`.
    pub fn step<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), TarError> {
        match self.state {
            State::Header | State::SecondEnd => {
                let take = (BLOCK - self.block.len()).min(input.len());
                self.block.extend_from_slice(&input[..take]);
                self.offset += take as u64;
                if self.block.len() < BLOCK {
                    return Ok((take, None));
                }
                let at = self.offset - BLOCK as u64;
                let block = std::mem::take(&mut self.block);
                let zero = block.iter().all(|&b| b == 0);
                if self.state == State::SecondEnd {
                    if !zero {
                        return Err(TarError::BadHeader {
                            at,
                            why: "a single zero block inside the archive",
                        });
                    }
                    self.state = State::Done;
                    return Ok((take, Some(Event::End)));
                }
                if zero {
                    self.state = State::SecondEnd;
                    return Ok((take, None));
                }
                let event = self.parse_header(&block, at)?;
                Ok((take, event))
            }
            State::Data { left } => {
                if left == 0 {
                    self.state = State::EntryEnd {
                        pad: self.pending_pad(),
                    };
                    return self.step(input);
                }
                if input.is_empty() {
                    return Ok((0, None));
                }
                let take = (left.min(input.len() as u64)) as usize;
                self.offset += take as u64;
                self.state = State::Data {
                    left: left - take as u64,
                };
                if left - take as u64 == 0 {
                    self.state = State::EntryEnd {
                        pad: self.pending_pad(),
                    };
                }
                Ok((take, Some(Event::Data(&input[..take]))))
            }
            State::EntryEnd { pad } => {
                self.state = State::Padding { left: pad };
                Ok((0, Some(Event::EntryEnd)))
            }
            State::Padding { left } => {
                let take = left.min(input.len());
                self.offset += take as u64;
                if take == left {
                    self.state = State::Header;
                } else {
                    self.state = State::Padding { left: left - take };
                }
                Ok((take, None))
            }
            State::Done => {
                // Writers pad archives to whole records (10,240 bytes for `tar`): zeros only.
                if input.iter().any(|&b| b != 0) {
                    return Err(TarError::TrailingData);
                }
                self.offset += input.len() as u64;
                Ok((input.len(), None))
            }
        }
    }

    /// The padding after the current entry: its data ends at `offset`.
    fn pending_pad(&self) -> usize {
        padding(self.offset)
    }

    fn parse_header(&mut self, h: &[u8], at: u64) -> Result<Option<Event<'static>>, TarError> {
        let stored = read_octal(&h[148..156]).ok_or(TarError::BadHeader {
            at,
            why: "the checksum is not octal",
        })?;
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if stored != sum {
            return Err(TarError::Checksum(at));
        }
        if &h[257..262] != b"ustar" {
            return Err(TarError::BadHeader {
                at,
                why: "no ustar magic",
            });
        }
        let size = read_octal(&h[124..136]).ok_or(TarError::BadHeader {
            at,
            why: "the size is not octal",
        })?;
        let name = field_str(&h[..100]).ok_or_else(|| TarError::BadName("(not UTF-8)".into()))?;
        let prefix = field_str(&h[345..500]).ok_or_else(|| TarError::BadName(name.into()))?;
        let name = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if name.is_empty() {
            return Err(TarError::BadName(name));
        }
        match h[156] {
            b'0' | 0 => {
                self.state = State::Data { left: size };
                Ok(Some(Event::Entry { name, size }))
            }
            b'5' => {
                // A directory (`assets/`): nothing to read, its data (none) skipped.
                self.state = State::Padding {
                    left: (size + padding(size) as u64) as usize,
                };
                Ok(None)
            }
            kind => Err(TarError::Unsupported {
                name,
                kind: kind as char,
            }),
        }
    }

    /// Checks that the input ended where an archive may: after its end blocks.
    pub fn finish(&self) -> Result<(), TarError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(TarError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in entries {
            out.extend_from_slice(&header(name, data.len() as u64, 1_700_000_000).unwrap());
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0, padding(data.len() as u64)));
        }
        out.extend_from_slice(&END);
        out
    }

    /// Reads a whole archive pushed in pieces of `piece` bytes.
    fn read(bytes: &[u8], piece: usize) -> Result<Vec<(String, Vec<u8>)>, TarError> {
        let mut reader = Reader::new();
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut open = false;
        for mut chunk in bytes.chunks(piece) {
            loop {
                let (used, event) = reader.step(chunk)?;
                chunk = &chunk[used..];
                match event {
                    Some(Event::Entry { name, size }) => {
                        assert!(!open);
                        open = true;
                        out.push((name, Vec::with_capacity(size as usize)));
                    }
                    Some(Event::Data(d)) => {
                        assert!(open && !d.is_empty());
                        out.last_mut().unwrap().1.extend_from_slice(d)
                    }
                    Some(Event::EntryEnd) => {
                        assert!(open);
                        open = false
                    }
                    Some(Event::End) => {}
                    None if chunk.is_empty() => break,
                    None => {}
                }
            }
        }
        reader.finish()?;
        Ok(out)
    }

    #[test]
    fn a_header_has_the_ustar_layout_and_a_checksum_that_sums_it() {
        let h = header("manifest.json", 1234, 0o1234).unwrap();
        assert_eq!(&h[..13], b"manifest.json");
        assert!(h[13..100].iter().all(|&b| b == 0));
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[124..136], b"00000002322\0");
        assert_eq!(&h[136..148], b"00000001234\0");
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        assert_eq!(&h[148..156], format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn names_and_sizes_must_fit_their_fields() {
        assert!(header(&"a".repeat(100), 0, 0).is_ok());
        assert_eq!(
            header(&"a".repeat(101), 0, 0),
            Err(TarError::BadName("a".repeat(101)))
        );
        assert!(header("", 0, 0).is_err());
        assert!(header("x", MAX_SIZE, 0).is_ok());
        assert_eq!(
            header("x", MAX_SIZE + 1, 0),
            Err(TarError::TooLarge(MAX_SIZE + 1))
        );
    }

    #[test]
    fn entries_are_padded_to_blocks_and_the_archive_ends_with_two_zero_blocks() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
        let bytes = archive(&[("a", b"hello"), ("b", &[7; 512]), ("c", b"")]);
        assert_eq!(bytes.len() as u64, archive_len([5, 512, 0]));
        assert_eq!(bytes.len(), 512 + 512 + 512 + 512 + 512 + 1024);
        assert!(bytes[bytes.len() - 1024..].iter().all(|&b| b == 0));
    }

    #[test]
    fn what_is_written_reads_back_in_pieces_of_any_size() {
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let entries: [(&str, &[u8]); 4] = [
            ("manifest.json", b"{}"),
            ("empty", b""),
            ("assets/abc", &big),
            ("x", &[1; 512]),
        ];
        let bytes = archive(&entries);
        for piece in [1, 7, 511, 512, 513, 4096, bytes.len()] {
            let got = read(&bytes, piece).unwrap();
            assert_eq!(got.len(), entries.len(), "piece {piece}");
            for ((name, data), (want_name, want)) in got.iter().zip(entries) {
                assert_eq!((name.as_str(), data.as_slice()), (want_name, want));
            }
        }
    }

    #[test]
    fn archives_made_by_tar_read_too_directories_skipped_and_record_padding_allowed() {
        // What `tar --format=ustar` writes: a directory entry, a prefix, 10 KiB records.
        let mut bytes = Vec::new();
        let mut dir = header("assets/", 0, 0).unwrap();
        dir[156] = b'5';
        rechecksum(&mut dir);
        bytes.extend_from_slice(&dir);
        let mut file = header("f", 3, 0).unwrap();
        file[345..351].copy_from_slice(b"assets");
        rechecksum(&mut file);
        bytes.extend_from_slice(&file);
        bytes.extend_from_slice(b"abc");
        bytes.extend(std::iter::repeat_n(0, padding(3)));
        bytes.extend_from_slice(&END);
        bytes.resize(10_240, 0);
        let got = read(&bytes, 100).unwrap();
        assert_eq!(got, vec![("assets/f".to_owned(), b"abc".to_vec())]);
    }

    fn rechecksum(h: &mut [u8; BLOCK]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn malformed_archives_are_refused_with_a_reason() {
        let good = archive(&[("a", b"hello")]);
        // A flipped byte in the header.
        let mut bad = good.clone();
        bad[0] = b'b';
        assert_eq!(read(&bad, 64), Err(TarError::Checksum(0)));
        // Not a tar at all.
        assert!(matches!(
            read(&[b'x'; 2048], 64),
            Err(TarError::Checksum(0) | TarError::BadHeader { .. })
        ));
        // No magic (with a right checksum).
        let mut h = header("a", 0, 0).unwrap();
        h[257..263].copy_from_slice(b"nope\0\0");
        rechecksum(&mut h);
        let mut bad = h.to_vec();
        bad.extend_from_slice(&END);
        assert!(matches!(read(&bad, 512), Err(TarError::BadHeader { .. })));
        // A symbolic link.
        let mut h = header("l", 0, 0).unwrap();
        h[156] = b'2';
        rechecksum(&mut h);
        let mut bad = h.to_vec();
        bad.extend_from_slice(&END);
        assert!(matches!(
            read(&bad, 512),
            Err(TarError::Unsupported { kind: '2', .. })
        ));
        // A pax extension header.
        let mut h = header("p", 0, 0).unwrap();
        h[156] = b'x';
        rechecksum(&mut h);
        assert!(matches!(
            read(&h, 512),
            Err(TarError::Unsupported { kind: 'x', .. })
        ));
        // Cut anywhere before the end blocks are complete.
        for cut in [0, 100, 512, 517, 1024, 1536, good.len() - 1] {
            assert_eq!(
                read(&good[..cut], 64),
                Err(TarError::Truncated),
                "cut {cut}"
            );
        }
        // Data after the end.
        let mut bad = good.clone();
        bad.push(1);
        assert_eq!(read(&bad, 64), Err(TarError::TrailingData));
        // A lone zero block between entries.
        let mut bad = vec![0; 512];
        bad.extend_from_slice(&good);
        assert!(matches!(read(&bad, 64), Err(TarError::BadHeader { .. })));
        // A size that is not octal.
        let mut h = header("a", 0, 0).unwrap();
        h[124..136].copy_from_slice(b"0000000009x\0");
        rechecksum(&mut h);
        assert!(matches!(read(&h, 512), Err(TarError::BadHeader { .. })));
    }
}
