//! A filter configuration that Envoy discovers (ECDS) from a file, as
//! `envoy-config/gateway-ecds.yaml` reads `envoy-config/ecds/gateway.yaml`. A test works on its
//! own copy and changes it the way an operator should: the whole new file is written next to
//! it and renamed over it (Envoy reacts to the rename and never reads half a file).

use crate::render::EnvoyConfig;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct EcdsFile {
    dir: PathBuf,
    path: PathBuf,
    document: EnvoyConfig,
    version: u64,
}

impl EcdsFile {
    /// A copy of `envoy-config/<file>` in a fresh folder, module paths made absolute. Point the
    /// gateway at it with [`EnvoyConfig::set_discovery_path`] before it starts.
    pub fn from_example(file: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let source = crate::repo_root().join("envoy-config").join(file);
        let mut document = EnvoyConfig::load(&source).unwrap_or_else(|e| panic!("{e}"));
        document.absolutize_paths(&crate::repo_root());
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("wasmgate-ecds-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let name = Path::new(file).file_name().unwrap_or(file.as_ref());
        let path = dir.join(name);
        let mut ecds = Self {
            dir,
            path,
            document,
            version: 0,
        };
        ecds.write();
        ecds
    }

    /// The file Envoy watches.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `version_info` last written.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Writes the next version with `json` as the plugin configuration of the Wasm filter whose
    /// `root_id` is `root_id` (the text need not be a valid configuration).
    pub fn publish(&mut self, root_id: &str, json: &str) {
        assert!(
            self.document.set_plugin_config(root_id, json),
            "{}: no Wasm filter with root_id {root_id}",
            self.path.display()
        );
        self.write();
    }

    fn write(&mut self) {
        self.version += 1;
        self.document.value_mut()["version_info"] = self.version.to_string().into();
        let next = self.dir.join(".next.yaml");
        std::fs::write(&next, self.document.to_yaml())
            .and_then(|()| std::fs::rename(&next, &self.path))
            .unwrap_or_else(|e| panic!("cannot publish {}: {e}", self.path.display()));
    }
}

impl Drop for EcdsFile {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
