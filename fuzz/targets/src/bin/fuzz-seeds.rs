//! Writes every target's seeds to `<dir>/<target>/seed-<n>`: where `make fuzz` starts a
//! campaign from, next to the committed corpus.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    for t in wasmgate_fuzz_targets::TARGETS {
        let target_dir = dir.join(t.name);
        std::fs::create_dir_all(&target_dir)?;
        for (i, seed) in (t.seeds)().iter().enumerate() {
            std::fs::write(target_dir.join(format!("seed-{i}")), seed)?;
        }
    }
    Ok(())
}
