//! IDX files (the MNIST format), plain or gzip-compressed: a 4-byte magic
//! `0x00 0x00 type ndim`, `ndim` big-endian u32 dimensions, then the data.
//! Only unsigned bytes (type 0x08) are used by MNIST and Fashion-MNIST.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxU8 {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

fn idx_err(path: &Path, what: impl Into<String>) -> Error {
    Error::Idx {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Read a file, decompressing it when it starts with the gzip magic (1f 8b).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(idx_err(path, "is a directory, expected an IDX file"));
    }
    let raw = crate::fs::read_file(path, u64::MAX)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = vec![];
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| idx_err(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The number of dimensions an IDX file's 4-byte magic announces, after checking it: `00
/// 00`, element type 0x08 (unsigned byte), at least 1 dimension. Every reader of IDX files
/// goes through it (the whole-file parse and the header-only read), so a file is refused
/// the same way whichever reads it first.
fn check_magic(magic: &[u8], path: &Path) -> Result<usize> {
    if magic.len() < 4 {
        return Err(idx_err(
            path,
            format!("{} bytes, shorter than the 4-byte magic", magic.len()),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(idx_err(
            path,
            format!(
                "magic starts {:02x} {:02x}, expected 00 00",
                magic[0], magic[1]
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(idx_err(
            path,
            format!(
                "element type 0x{:02x}, expected 0x08 (unsigned byte)",
                magic[2]
            ),
        ));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(idx_err(path, "0 dimensions, expected at least 1"));
    }
    Ok(ndim)
}

/// Parse IDX bytes (already decompressed). `path` is only used in error messages.
pub fn parse_u8(bytes: &[u8], path: &Path) -> Result<IdxU8> {
    let ndim = check_magic(&bytes[..bytes.len().min(4)], path)?;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(idx_err(
            path,
            format!(
                "{} bytes, shorter than the {header}-byte header for {ndim} dimensions",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| idx_err(path, format!("dimensions {dims:?} overflow")))?;
    let body = bytes.len() - header;
    if body != count {
        return Err(idx_err(
            path,
            format!("dimensions {dims:?} need {count} data bytes, file has {body}"),
        ));
    }
    Ok(IdxU8 {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Read an IDX file of unsigned bytes.
pub fn read_u8(path: &Path) -> Result<IdxU8> {
    parse_u8(&read_maybe_gz(path)?, path)
}

/// The dimensions in an IDX file's header, reading only the header (decompressing only its
/// start when gzip-compressed). The magic is checked as [`parse_u8`] checks it.
pub fn read_dims(path: &Path) -> Result<Vec<usize>> {
    if path.is_dir() {
        return Err(idx_err(path, "is a directory, expected an IDX file"));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut raw = std::io::BufReader::new(f);
    let mut magic = [0u8; 2];
    let mut head = vec![];
    (&mut raw)
        .take(2)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    magic[..head.len()].copy_from_slice(&head);
    let chained = std::io::Cursor::new(head).chain(raw);
    let mut r: Box<dyn Read> = if magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(chained))
    } else {
        Box::new(chained)
    };
    let mut bytes = vec![];
    (&mut r)
        .take(4)
        .read_to_end(&mut bytes)
        .map_err(|e| idx_err(path, format!("unreadable header: {e}")))?;
    let ndim = check_magic(&bytes, path)?;
    let mut dims = vec![0u8; 4 * ndim];
    r.read_exact(&mut dims)
        .map_err(|e| idx_err(path, format!("unreadable header: {e}")))?;
    Ok(dims
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}
