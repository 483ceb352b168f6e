//! Writes the reaction list (`$OUT_DIR/rgi_emoji.rs`): every fully-qualified emoji of the
//! `emojis` crate, skin tones included, sorted for binary search. The crate itself carries names,
//! shortcodes and two lookup maps (about 1 MB of a binary) that a reaction check does not need;
//! its list stays the reference in the tests (`prop/domain.rs`).

use std::fmt::Write as _;

fn main() -> std::io::Result<()> {
    let mut all: Vec<&str> = emojis::iter()
        .flat_map(|emoji| std::iter::once(emoji).chain(emoji.skin_tones().into_iter().flatten()))
        .map(emojis::Emoji::as_str)
        .collect();
    all.sort_unstable();
    all.dedup();
    let mut out = String::from(
        "/// Every fully-qualified emoji (Unicode's RGI list, as the `emojis` crate carries it), sorted.\n\
         pub static RGI: &[&str] = &[\n",
    );
    for emoji in &all {
        let _ = writeln!(out, "    {emoji:?},");
    }
    out.push_str("];\n");
    let dir = std::env::var_os("OUT_DIR").unwrap_or_default();
    let path = std::path::Path::new(&dir).join("rgi_emoji.rs");
    std::fs::write(path, out)?;
    println!("cargo::rerun-if-changed=build.rs");
    Ok(())
}
