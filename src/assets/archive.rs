//! Document archives (docs/archive.md): a ustar file ([`super::tar`]) holding `manifest.json`,
//! `document.yjs` (the whole state, a v1 update), `document.json` (the JSON rendering) and
//! `assets/<sha256>` for each stored file the document references. This module holds the
//! manifest, its checks and the plan of an import; the edge (`edge::v1::archive`) streams.

use super::{check_name, is_server_id, parse_content_type, parse_tag, Licence, Sha256};
use crate::api::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The `format` of every archive this server writes and reads.
pub const FORMAT: &str = "tandemx-archive/1";
/// The first entry.
pub const MANIFEST: &str = "manifest.json";
/// The document's state.
pub const STATE: &str = "document.yjs";
/// The document's JSON rendering (written for readers; an import uses the state).
pub const RENDERING: &str = "document.json";
/// Most asset versions one archive holds (each is a storage read or write).
pub const MAX_ASSETS: usize = 1_000;
/// Largest manifest, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// Largest archive an import reads: under the 100 MB request body limit of Cloudflare's Free
/// and Pro plans (<https://developers.cloudflare.com/workers/platform/limits/#request-limits>).
pub const MAX_IMPORT_BYTES: u64 = 90 * 1024 * 1024;
/// Largest `document.yjs` an import reads (it is held in memory and handed to the room).
pub const MAX_STATE_BYTES: u64 = 32 * 1024 * 1024;

/// Highest version number an asset has (an asset keeps at most 1,000 versions).
const MAX_VERSION: u64 = 1_000;

/// The path of an asset file in an archive.
pub fn asset_path(sha: &str) -> String {
    format!("assets/{sha}")
}

/// What `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The exported document's name.
    pub document: String,
    /// When it was exported (unix ms).
    pub exported_at: u64,
    /// Every asset version the document references that the archive holds.
    pub assets: Vec<ArchivedAsset>,
    /// References to assets (or versions) the project no longer has.
    #[serde(default)]
    pub missing: Vec<MissingAsset>,
}

/// An asset version in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedAsset {
    /// The asset id (references name it).
    pub id: String,
    /// The version.
    pub version: u64,
    /// Whether it was the asset's current version.
    #[serde(default)]
    pub current: bool,
    /// The version's display name.
    pub name: String,
    /// Its content type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: Sha256,
    /// The asset's licence, attribution and source.
    #[serde(default)]
    pub licence: Option<Licence>,
    /// The asset's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where its bytes are in the archive: `assets/<sha256>`.
    pub path: String,
}

/// A reference the archive could not include.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingAsset {
    /// The asset id referenced.
    pub id: String,
    /// The version referenced (`None`: the current one).
    #[serde(default)]
    pub version: Option<u64>,
    /// Why it is not in the archive.
    pub reason: String,
}

fn invalid(why: impl Into<String>) -> ApiError {
    ApiError::Unprocessable("invalid-archive", why.into())
}

impl Manifest {
    /// Parses and checks a manifest: its format, every asset entry's id, version, name, type,
    /// size, digest, path, licence and tags, one entry per asset version, one size per digest.
    pub fn parse(bytes: &[u8], max_file: u64) -> Result<Manifest, ApiError> {
        let mut m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("manifest.json does not parse: {e}")))?;
        if m.format != FORMAT {
            return Err(invalid(format!(
                "manifest.json is of format {:?}; this server reads {FORMAT:?}",
                m.format
            )));
        }
        if m.assets.len() > MAX_ASSETS || m.missing.len() > MAX_ASSETS {
            return Err(invalid(format!(
                "an archive holds at most {MAX_ASSETS} asset versions"
            )));
        }
        let mut seen = BTreeSet::new();
        let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
        for a in &mut m.assets {
            let at = format!("asset {}@{}", a.id, a.version);
            if !is_server_id("ast_", &a.id) {
                return Err(invalid(format!("{:?} is not an asset id", a.id)));
            }
            if a.version == 0 || a.version > MAX_VERSION {
                return Err(invalid(format!("{at}: no such version number")));
            }
            if !seen.insert((a.id.clone(), a.version)) {
                return Err(invalid(format!("{at} is listed twice")));
            }
            check_name(&a.name).map_err(|e| invalid(format!("{at}: {}", e.problem().detail)))?;
            a.content_type = parse_content_type(&a.content_type)
                .map_err(|e| invalid(format!("{at}: {}", e.problem().detail)))?;
            if a.size == 0 {
                return Err(invalid(format!("{at} is empty")));
            }
            if a.size > max_file.min(super::tar::MAX_SIZE) {
                return Err(ApiError::FileTooLarge { limit: max_file });
            }
            if a.path != asset_path(a.sha256.as_str()) {
                return Err(invalid(format!(
                    "{at}: its path must be {}",
                    asset_path(a.sha256.as_str())
                )));
            }
            if let Some(l) = &a.licence {
                l.check()
                    .map_err(|e| invalid(format!("{at}: {}", e.problem().detail)))?;
            }
            if a.tags.len() > super::MAX_TAGS {
                return Err(invalid(format!("{at}: at most {} tags", super::MAX_TAGS)));
            }
            let mut tags = Vec::new();
            for t in &a.tags {
                let t =
                    parse_tag(t).map_err(|e| invalid(format!("{at}: {}", e.problem().detail)))?;
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            a.tags = tags;
        }
        for a in &m.assets {
            if *sizes.entry(a.sha256.as_str()).or_insert(a.size) != a.size {
                return Err(invalid(format!(
                    "sha256 {} is listed with two sizes",
                    a.sha256.as_str()
                )));
            }
        }
        Ok(m)
    }

    /// The files the archive holds: each digest once, with its size, in manifest order.
    pub fn files(&self) -> Vec<(&Sha256, u64)> {
        let mut seen = BTreeSet::new();
        self.assets
            .iter()
            .filter(|a| seen.insert(a.sha256.as_str()))
            .map(|a| (&a.sha256, a.size))
            .collect()
    }

    /// The assets, each with its versions listed, lowest version first.
    pub fn by_asset(&self) -> BTreeMap<&str, Vec<&ArchivedAsset>> {
        let mut out: BTreeMap<&str, Vec<&ArchivedAsset>> = BTreeMap::new();
        for a in &self.assets {
            out.entry(a.id.as_str()).or_default().push(a);
        }
        for versions in out.values_mut() {
            versions.sort_by_key(|a| a.version);
        }
        out
    }
}

/// How an asset of an archive meets the project it is imported into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    /// The project has no asset of that id: it is created, with the archive's version numbers.
    Create,
    /// The project has the same asset (every archived version with the same bytes): references
    /// resolve already, nothing is written.
    Reuse,
}

/// Decides what becomes of asset `id` (its archived `versions`) in a project where the asset
/// of that id has `existing` versions (number and digest; empty: no such asset). Asset ids are
/// kept across projects (references name them); an id the project uses for other bytes is a
/// conflict (409) rather than a silent rename.
pub fn landing(
    id: &str,
    versions: &[&ArchivedAsset],
    existing: &[(u64, String)],
) -> Result<Landing, ApiError> {
    if existing.is_empty() {
        return Ok(Landing::Create);
    }
    let same = versions.iter().all(|a| {
        existing
            .iter()
            .any(|(v, sha)| *v == a.version && sha == a.sha256.as_str())
    });
    if same {
        Ok(Landing::Reuse)
    } else {
        Err(ApiError::Conflict(format!(
            "asset {id} exists in this project with other content; nothing was imported"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const ID: &str = "ast_0123456789abcdef0123";

    fn entry(version: u64, sha: &str, size: u64) -> serde_json::Value {
        json!({ "id": ID, "version": version, "current": false, "name": "cat.png",
            "content_type": "Image/PNG", "size": size, "sha256": sha,
            "licence": { "spdx": "CC-BY-4.0", "attribution": "Ada" }, "tags": ["Cats", "cats"],
            "path": format!("assets/{sha}") })
    }

    fn manifest(assets: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "format": FORMAT, "document": "doc", "exported_at": 1,
            "assets": assets, "missing": [{ "id": ID, "version": 9, "reason": "no such version" }] }))
        .unwrap()
    }

    #[test]
    fn a_manifest_parses_normalized_and_lists_each_file_once() {
        let m = Manifest::parse(
            &manifest(vec![
                entry(1, SHA_A, 10),
                entry(2, SHA_B, 20),
                entry(3, SHA_A, 10),
            ]),
            1000,
        )
        .unwrap();
        assert_eq!(m.assets[0].content_type, "image/png");
        assert_eq!(m.assets[0].tags, vec!["cats"]);
        let files: Vec<(&str, u64)> = m.files().iter().map(|(s, n)| (s.as_str(), *n)).collect();
        assert_eq!(files, vec![(SHA_A, 10), (SHA_B, 20)]);
        let by = m.by_asset();
        assert_eq!(
            by[ID].iter().map(|a| a.version).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(m.missing[0].version, Some(9));
        // It serializes back to what it read.
        let again: Manifest = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        let status = |bytes: &[u8]| Manifest::parse(bytes, 1000).unwrap_err().status();
        assert_eq!(status(b"not json"), 422);
        assert_eq!(
            status(br#"{"format":"tandemx-archive/2","document":"d","exported_at":1,"assets":[]}"#),
            422
        );
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut e = entry(1, SHA_A, 10);
            f(&mut e);
            manifest(vec![e])
        };
        for bad in [
            with(&|e| e["id"] = json!("ast_nope")),
            with(&|e| e["version"] = json!(0)),
            with(&|e| e["name"] = json!("")),
            with(&|e| e["content_type"] = json!("nothing")),
            with(&|e| e["size"] = json!(0)),
            with(&|e| e["path"] = json!("../../etc/passwd")),
            with(&|e| e["licence"] = json!({ "spdx": "<script>" })),
            with(&|e| e["tags"] = json!(["no spaces"])),
            manifest(vec![entry(1, SHA_A, 10), entry(1, SHA_B, 10)]),
            manifest(vec![entry(1, SHA_A, 10), entry(2, SHA_A, 11)]),
        ] {
            assert!(
                Manifest::parse(&bad, 1000).is_err(),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        assert!(Manifest::parse(&with(&|e| e["sha256"] = json!("xyz")), 1000).is_err());
        // Larger than the project takes.
        assert_eq!(status(&manifest(vec![entry(1, SHA_A, 1001)])), 413);
        let many: Vec<serde_json::Value> = (1..=MAX_ASSETS as u64 + 1)
            .map(|v| entry(v % 1000 + 1, SHA_A, 10))
            .collect();
        assert_eq!(status(&manifest(many)), 422);
    }

    #[test]
    fn an_asset_lands_new_or_the_same_and_other_content_under_its_id_is_a_conflict() {
        let m = Manifest::parse(
            &manifest(vec![entry(1, SHA_A, 10), entry(3, SHA_B, 20)]),
            1000,
        )
        .unwrap();
        let by = m.by_asset();
        let versions = &by[ID];
        assert_eq!(landing(ID, versions, &[]).unwrap(), Landing::Create);
        let same = [
            (1, SHA_A.to_owned()),
            (2, SHA_A.to_owned()),
            (3, SHA_B.to_owned()),
        ];
        assert_eq!(landing(ID, versions, &same).unwrap(), Landing::Reuse);
        let other = [(1, SHA_A.to_owned()), (3, SHA_A.to_owned())];
        let e = landing(ID, versions, &other).unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(e.problem().detail.contains(ID));
        assert_eq!(landing(ID, versions, &same[..1]).unwrap_err().status(), 409);
    }
}
