//! What an uploaded file really is, decided from its bytes (SPEC §4: "checked by content, not
//! only by the name"). The file name and the client's `Content-Type` are never trusted: a JPEG
//! named `scan.pdf` is an `image/jpeg`.
//!
//! Recognized: PDF (`%PDF-`), JPEG (`FF D8 FF`), PNG (its 8-byte signature), HEIC (an ISO-BMFF
//! `ftyp` box at offset 4 whose major brand is `heic`, `heix`, `mif1` or `msf1`), DICOM Part 10
//! (`DICM` after the 128-byte preamble) and ZIP archives whose every file is DICOM. Whether a
//! recognized type is *allowed* is the core's decision (`sop_core::rules::ALLOWED_CONTENT_TYPES`);
//! a file recognized as none of these gets [`UNKNOWN`], which the core refuses.
//!
//! Adding a type: add a branch to [`sniff`] (or a content check like [`zip_of_dicom`]), a unit
//! test with the smallest real header, and the type to the core's allowed list if it is allowed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The content type of bytes this module does not recognize.
pub const UNKNOWN: &str = "application/octet-stream";

/// How many leading bytes [`sniff`] needs to recognize every type.
pub const HEAD_LEN: usize = 132;

/// The DICOM Part 10 marker and where it sits (after a 128-byte preamble).
const DICM: &[u8; 4] = b"DICM";
const DICM_OFFSET: usize = 128;

/// HEIF major brands of HEIC images and image sequences.
const HEIC_BRANDS: [&[u8; 4]; 4] = [b"heic", b"heix", b"mif1", b"msf1"];

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
const ZIP_LOCAL_HEADER: &[u8; 4] = b"PK\x03\x04";

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A type settled by its signature alone.
    Type(&'static str),
    /// A ZIP archive: allowed only if its entries are DICOM, which [`zip_of_dicom`] checks.
    Zip,
}

/// Recognizes a file by its first [`HEAD_LEN`] bytes (fewer if the file is shorter).
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    let is_dicom = head.get(DICM_OFFSET..DICM_OFFSET + DICM.len()) == Some(DICM);
    let heic_brand = (head.get(4..8) == Some(b"ftyp"))
        .then(|| head.get(8..12))
        .flatten();
    if head.starts_with(b"%PDF-") {
        Some(Sniffed::Type("application/pdf"))
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Sniffed::Type("image/jpeg"))
    } else if head.starts_with(PNG_SIGNATURE) {
        Some(Sniffed::Type("image/png"))
    } else if heic_brand.is_some_and(|b| HEIC_BRANDS.iter().any(|h| h.as_slice() == b)) {
        Some(Sniffed::Type("image/heic"))
    } else if is_dicom {
        Some(Sniffed::Type("application/dicom"))
    } else if head.starts_with(ZIP_LOCAL_HEADER) {
        Some(Sniffed::Zip)
    } else {
        None
    }
}

/// The content type of the file at `path`, from its content ([`UNKNOWN`] when not recognized).
/// Blocking: reads the file; call it from `spawn_blocking`.
pub fn detect_file(path: &Path) -> io::Result<&'static str> {
    let mut file = File::open(path)?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    file.by_ref().take(HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(match sniff(&head) {
        Some(Sniffed::Type(t)) => t,
        Some(Sniffed::Zip) if zip_of_dicom(&mut file)? => "application/zip",
        Some(Sniffed::Zip) | None => UNKNOWN,
    })
}

// ZIP layout (APPNOTE.TXT): the end-of-central-directory record (EOCD) at the end points to the
// central directory, whose entries point to each file's local header and data.
const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIG: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
/// Compressed bytes read per entry: far more than a DICOM preamble ever needs.
const ENTRY_PROBE: u64 = 64 * 1024;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at + 2)?;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// One file of the archive, as the central directory describes it.
struct Entry {
    method: u16,
    encrypted: bool,
    compressed_size: u64,
    local_offset: u64,
    name: Vec<u8>,
}

impl Entry {
    /// Directories and macOS resource-fork shadows carry no medical content.
    fn is_skippable(&self) -> bool {
        self.name.ends_with(b"/") || self.name.starts_with(b"__MACOSX/")
    }
}

/// Whether the ZIP archive in `r` holds at least one file and every file is DICOM Part 10
/// (stored or deflated). Encrypted entries, other compression methods, ZIP64 archives and
/// anything malformed answer `false`: such an archive is not accepted.
pub fn zip_of_dicom<R: Read + Seek>(r: &mut R) -> io::Result<bool> {
    let Some(entries) = central_directory(r)? else {
        return Ok(false);
    };
    let mut files = 0usize;
    for entry in entries.iter().filter(|e| !e.is_skippable()) {
        if entry.encrypted || !entry_is_dicom(r, entry)? {
            return Ok(false);
        }
        files += 1;
    }
    Ok(files > 0)
}

/// Reads the central directory; `None` when it is missing, malformed or ZIP64.
fn central_directory<R: Read + Seek>(r: &mut R) -> io::Result<Option<Vec<Entry>>> {
    let len = r.seek(SeekFrom::End(0))?;
    // The EOCD is the last 22 bytes plus an archive comment of at most 65 535 bytes.
    let tail_len = len.min((EOCD_LEN + usize::from(u16::MAX)) as u64);
    r.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    r.by_ref().take(tail_len).read_to_end(&mut tail)?;
    let Some(eocd) = (0..=tail.len().saturating_sub(EOCD_LEN))
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(EOCD_SIG))
    else {
        return Ok(None);
    };
    let eocd = &tail[eocd..];
    let (Some(count), Some(size), Some(offset)) =
        (u16_at(eocd, 10), u32_at(eocd, 12), u32_at(eocd, 16))
    else {
        return Ok(None);
    };
    // 0xFFFF / 0xFFFFFFFF mean "see the ZIP64 record", which a 50 MiB upload never needs.
    if count == u16::MAX || size == u32::MAX || offset == u32::MAX {
        return Ok(None);
    }
    if u64::from(offset) + u64::from(size) > len {
        return Ok(None);
    }
    r.seek(SeekFrom::Start(u64::from(offset)))?;
    let mut dir = Vec::new();
    r.by_ref().take(u64::from(size)).read_to_end(&mut dir)?;
    let mut entries = Vec::with_capacity(usize::from(count));
    let mut at = 0usize;
    for _ in 0..count {
        let Some(entry) = central_entry(&dir, &mut at) else {
            return Ok(None);
        };
        entries.push(entry);
    }
    Ok(Some(entries))
}

/// Parses the central directory entry at `*at` and moves `*at` past it.
fn central_entry(dir: &[u8], at: &mut usize) -> Option<Entry> {
    let h = dir.get(*at..*at + CENTRAL_LEN)?;
    if u32_at(h, 0)? != CENTRAL_SIG {
        return None;
    }
    let flags = u16_at(h, 8)?;
    let name_len = usize::from(u16_at(h, 28)?);
    let extra_len = usize::from(u16_at(h, 30)?);
    let comment_len = usize::from(u16_at(h, 32)?);
    let name_start = *at + CENTRAL_LEN;
    let name = dir.get(name_start..name_start + name_len)?.to_vec();
    *at = name_start + name_len + extra_len + comment_len;
    Some(Entry {
        method: u16_at(h, 10)?,
        encrypted: flags & 1 == 1,
        compressed_size: u64::from(u32_at(h, 20)?),
        local_offset: u64::from(u32_at(h, 42)?),
        name,
    })
}

/// Whether the entry's content starts like a DICOM Part 10 file.
fn entry_is_dicom<R: Read + Seek>(r: &mut R, entry: &Entry) -> io::Result<bool> {
    r.seek(SeekFrom::Start(entry.local_offset))?;
    let mut header = [0u8; LOCAL_LEN];
    if r.read_exact(&mut header).is_err() || u32_at(&header, 0) != Some(LOCAL_SIG) {
        return Ok(false);
    }
    let skip =
        u64::from(u16_at(&header, 26).unwrap_or(0)) + u64::from(u16_at(&header, 28).unwrap_or(0));
    r.seek(SeekFrom::Current(i64::try_from(skip).unwrap_or(i64::MAX)))?;
    let mut data = Vec::new();
    r.by_ref()
        .take(entry.compressed_size.min(ENTRY_PROBE))
        .read_to_end(&mut data)?;
    let content = match entry.method {
        METHOD_STORED => data,
        METHOD_DEFLATED => {
            // Only the preamble is needed: stop inflating there. A probe that ends mid-stream
            // or a limit reached both report an "error" carrying the bytes inflated so far.
            let limit = DICM_OFFSET + DICM.len();
            match miniz_oxide::inflate::decompress_to_vec_with_limit(&data, limit) {
                Ok(out) => out,
                Err(partial) => partial.output,
            }
        }
        _ => return Ok(false),
    };
    Ok(content.get(DICM_OFFSET..DICM_OFFSET + DICM.len()) == Some(DICM))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use std::io::Cursor;

    fn dicom() -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM\x02\x00\x00\x00UL\x04\x00");
        b.extend_from_slice(&[7u8; 300]);
        b
    }

    /// A ZIP archive of `(name, content, deflate?)` entries, built by hand.
    fn zip(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, content, deflate) in entries {
            let (method, data) = if *deflate {
                (8u16, miniz_oxide::deflate::compress_to_vec(content, 6))
            } else {
                (0u16, content.to_vec())
            };
            let offset = out.len() as u32;
            let mut fixed = Vec::new();
            fixed.extend_from_slice(&20u16.to_le_bytes()); // version needed
            fixed.extend_from_slice(&0u16.to_le_bytes()); // flags
            fixed.extend_from_slice(&method.to_le_bytes());
            fixed.extend_from_slice(&[0u8; 4]); // time, date
            fixed.extend_from_slice(&0u32.to_le_bytes()); // crc (not checked here)
            fixed.extend_from_slice(&(data.len() as u32).to_le_bytes());
            fixed.extend_from_slice(&(content.len() as u32).to_le_bytes());
            fixed.extend_from_slice(&(name.len() as u16).to_le_bytes());
            fixed.extend_from_slice(&0u16.to_le_bytes()); // extra
            out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
            out.extend_from_slice(&fixed);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&data);
            central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes()); // version made by
            central.extend_from_slice(&fixed);
            central.extend_from_slice(&0u16.to_le_bytes()); // comment
            central.extend_from_slice(&[0u8; 8]); // disk, attributes
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        let n = entries.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn detect_bytes(bytes: &[u8]) -> &'static str {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        detect_file(&path).unwrap()
    }

    #[test]
    fn signatures_are_recognized() {
        let mut heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic".to_vec();
        heic.extend_from_slice(&[0; 40]);
        for (bytes, expected) in [
            (b"%PDF-1.7\n%...".to_vec(), "application/pdf"),
            (vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J'], "image/jpeg"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(), "image/png"),
            (heic, "image/heic"),
            (dicom(), "application/dicom"),
        ] {
            assert_eq!(detect_bytes(&bytes), expected);
        }
    }

    #[test]
    fn heif_brands_that_are_not_heic_are_unknown() {
        let avif = b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00";
        assert_eq!(detect_bytes(avif), UNKNOWN);
    }

    #[test]
    fn text_and_empty_files_are_unknown() {
        assert_eq!(detect_bytes(b"hello, this is not a scan\n"), UNKNOWN);
        assert_eq!(detect_bytes(b""), UNKNOWN);
        assert_eq!(detect_bytes(b"%PD"), UNKNOWN);
    }

    #[test]
    fn zip_of_stored_and_deflated_dicom_is_a_zip() {
        let d = dicom();
        let archive = zip(&[
            ("study/", b"", false),
            ("study/IM1.dcm", &d, false),
            ("study/IM2.dcm", &d, true),
        ]);
        assert_eq!(detect_bytes(&archive), "application/zip");
    }

    #[test]
    fn zip_with_a_non_dicom_file_or_no_file_is_unknown() {
        let d = dicom();
        let mixed = zip(&[("IM1.dcm", &d, true), ("notes.txt", b"hello", false)]);
        assert_eq!(detect_bytes(&mixed), UNKNOWN);
        let empty = zip(&[("dir/", b"", false)]);
        assert_eq!(detect_bytes(&empty), UNKNOWN);
        let truncated = &zip(&[("IM1.dcm", &d, false)])[..40];
        assert_eq!(detect_bytes(truncated), UNKNOWN);
    }

    #[test]
    fn zip_check_reads_from_any_seekable_reader() {
        let d = dicom();
        let archive = zip(&[("a.dcm", &d, true)]);
        assert!(zip_of_dicom(&mut Cursor::new(archive)).unwrap());
    }
}
