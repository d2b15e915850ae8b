//! `ProjectLimits` and the capped readers that enforce them while bytes are decompressed,
//! whatever an archive's headers claim.

use std::cell::Cell;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use super::error::{Limit, ProjectError};

const MIB: u64 = 1024 * 1024;

/// The caps every constructor enforces. Counted on real bytes as they are read or
/// decompressed, never on sizes an archive declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectLimits {
    /// All files together, decompressed (the bundled `python_code` counts too). Default 64 MiB.
    pub max_total_bytes: u64,
    /// One file, decompressed. Default 16 MiB.
    pub max_file_bytes: u64,
    /// Number of files shipped (skipped junk does not count). Default 2,000.
    pub max_files: usize,
    /// An uploaded archive or a bundle as received. Default 72 MiB: the 64 MiB of content
    /// that `max_total_bytes` allows, stored uncompressed, plus tar headers and padding for
    /// 2,000 files and gzip's worst-case growth, so that every project that passes the other
    /// caps also makes a bundle that passes this one.
    pub max_compressed_bytes: u64,
}

impl Default for ProjectLimits {
    fn default() -> Self {
        ProjectLimits {
            max_total_bytes: 64 * MIB,
            max_file_bytes: 16 * MIB,
            max_files: 2_000,
            max_compressed_bytes: 72 * MIB,
        }
    }
}

impl ProjectLimits {
    /// How many bytes a tar stream may decompress to in all, headers and skipped entries
    /// included: twice the content cap, so junk (a `.git/` folder) cannot make the unpacker
    /// churn through gigabytes it will throw away.
    pub(crate) fn max_stream_bytes(&self) -> u64 {
        self.max_total_bytes.saturating_mul(2).saturating_add(MIB)
    }

    /// An archive or bundle of `size` bytes as received, against `max_compressed_bytes`.
    pub(crate) fn check_compressed(&self, what: &str, size: u64) -> Result<(), ProjectError> {
        if size > self.max_compressed_bytes {
            return Err(ProjectError::TooLarge {
                what: what.to_owned(),
                limit: Limit::Bytes(self.max_compressed_bytes),
            });
        }
        Ok(())
    }
}

/// Reads at most `cap` bytes; `Ok(None)` when the reader had more (nothing past `cap + 1`
/// bytes is ever read or held).
pub(crate) fn read_capped(reader: &mut dyn Read, cap: u64) -> io::Result<Option<Vec<u8>>> {
    let mut buffer = Vec::new();
    reader.take(cap.saturating_add(1)).read_to_end(&mut buffer)?;
    Ok((buffer.len() as u64 <= cap).then_some(buffer))
}

/// Wraps a decompressor: fails once more than `remaining` bytes come out, and sets `tripped`
/// so the caller can tell the cap from a corrupt stream whatever error the layer above makes
/// of it.
pub(crate) struct CappedReader<'a, R> {
    inner: R,
    remaining: u64,
    tripped: &'a Cell<bool>,
}

impl<'a, R: Read> CappedReader<'a, R> {
    pub(crate) fn new(inner: R, cap: u64, tripped: &'a Cell<bool>) -> Self {
        CappedReader { inner, remaining: cap, tripped }
    }
}

impl<R: Read> Read for CappedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // One byte past the cap tells "exactly at the cap" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.tripped.set(true);
                    Err(io::Error::other("decompressed size over the cap"))
                }
            };
        }
        let window = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..window])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_stops_on_an_endless_stream() {
        // io::repeat never ends: reading it whole would never return.
        let mut endless = io::repeat(0);
        assert_eq!(read_capped(&mut endless, 1024).ok(), Some(None));
    }

    #[test]
    fn read_capped_accepts_exactly_the_cap() {
        let mut data: &[u8] = &[7; 100];
        assert_eq!(read_capped(&mut data, 100).ok().flatten().map(|b| b.len()), Some(100));
    }

    #[test]
    fn capped_reader_trips_past_the_cap_only() {
        let tripped = Cell::new(false);
        let mut exact = CappedReader::new(&[1u8; 10][..], 10, &tripped);
        let mut sink = Vec::new();
        assert!(exact.read_to_end(&mut sink).is_ok());
        assert!(!tripped.get());

        let mut endless = CappedReader::new(io::repeat(1), 10, &tripped);
        assert!(endless.read_to_end(&mut Vec::new()).is_err());
        assert!(tripped.get());
    }
}
