//! The snapshot archive of `/v1/snapshot` and `census snapshot`: a gzipped tar holding
//! `meta.json`, `state.bin` (the catalog) and `SHA256SUMS`, laid out as Consul's snapshots are.

use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state::CatalogState;

/// The format of `state.bin` this build writes and reads.
pub const STATE_FORMAT: &str = "census-catalog-bincode-1";

const META: &str = "meta.json";
const STATE: &str = "state.bin";
const SUMS: &str = "SHA256SUMS";

/// `meta.json`, with Consul's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveMeta {
    #[serde(rename = "ID")]
    pub id: String,
    /// Bytes of `state.bin`.
    pub size: u64,
    pub index: u64,
    pub term: u64,
    pub version: u32,
    pub format: String,
}

/// Why bytes are not a snapshot this build can restore.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a gzipped tar archive: {0}")]
    Container(std::io::Error),
    #[error("the archive has no {0}")]
    Missing(&'static str),
    #[error("{0} does not match its SHA-256 sum: the archive is damaged")]
    Checksum(&'static str),
    #[error("meta.json: {0}")]
    Meta(serde_json::Error),
    #[error("snapshot format {0:?} is not one this build reads ({STATE_FORMAT})")]
    Format(String),
    #[error("state.bin: {0}")]
    State(bincode::Error),
}

/// A read and verified archive.
pub struct Archive {
    pub meta: ArchiveMeta,
    pub state: CatalogState,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn append(builder: &mut tar::Builder<impl std::io::Write>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    builder.append_data(&mut header, name, data)
}

/// Writes `state` (a copy the caller owns) as an archive. `term` and `index` say where in the
/// log it was taken.
pub fn write(mut state: CatalogState, id: &str, index: u64, term: u64) -> std::io::Result<Vec<u8>> {
    state.restore = None;
    let state_bytes = state.to_bytes().map_err(std::io::Error::other)?;
    let meta = ArchiveMeta {
        id: id.to_string(),
        size: state_bytes.len() as u64,
        index,
        term,
        version: 1,
        format: STATE_FORMAT.to_string(),
    };
    let meta_bytes = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
    let sums = format!("{}  {META}\n{}  {STATE}\n", sha256_hex(&meta_bytes), sha256_hex(&state_bytes));
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    append(&mut builder, META, &meta_bytes)?;
    append(&mut builder, STATE, &state_bytes)?;
    append(&mut builder, SUMS, sums.as_bytes())?;
    builder.into_inner()?.finish()
}

/// Reads `meta.json` only after checking every sum.
pub fn read_meta(bytes: &[u8]) -> Result<(ArchiveMeta, Vec<u8>), ArchiveError> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let (mut meta, mut state, mut sums) = (None, None, None);
    for entry in tar.entries().map_err(ArchiveError::Container)? {
        let mut entry = entry.map_err(ArchiveError::Container)?;
        let name = entry.path().map_err(ArchiveError::Container)?.to_string_lossy().into_owned();
        let slot = match name.as_str() {
            META => &mut meta,
            STATE => &mut state,
            SUMS => &mut sums,
            _ => continue,
        };
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(ArchiveError::Container)?;
        *slot = Some(data);
    }
    let meta = meta.ok_or(ArchiveError::Missing(META))?;
    let state = state.ok_or(ArchiveError::Missing(STATE))?;
    let sums = String::from_utf8_lossy(&sums.ok_or(ArchiveError::Missing(SUMS))?).into_owned();
    for (name, data) in [(META, &meta), (STATE, &state)] {
        let listed = sums.lines().find_map(|line| {
            let (sum, file) = line.split_once("  ")?;
            (file.trim() == name).then(|| sum.trim().to_string())
        });
        match listed {
            Some(sum) if sum == sha256_hex(data) => {}
            Some(_) => return Err(ArchiveError::Checksum(name)),
            None => return Err(ArchiveError::Missing("sum of every file in SHA256SUMS")),
        }
    }
    let meta: ArchiveMeta = serde_json::from_slice(&meta).map_err(ArchiveError::Meta)?;
    if meta.format != STATE_FORMAT {
        return Err(ArchiveError::Format(meta.format));
    }
    Ok((meta, state))
}

/// Reads and verifies a whole archive.
pub fn read(bytes: &[u8]) -> Result<Archive, ArchiveError> {
    let (meta, state) = read_meta(bytes)?;
    let state = CatalogState::from_bytes(&state).map_err(ArchiveError::State)?;
    Ok(Archive { meta, state })
}
