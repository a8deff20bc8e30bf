//! The first-party plugins built into this binary (see `host/build.rs`).

use super::inspect::PluginKind;

/// A plugin compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPlugin {
    /// The name `--adapter` / `--slo-policy` accept (its `plugins/` folder).
    pub name: &'static str,
    pub kind: PluginKind,
    /// The component's wasm bytes.
    pub bytes: &'static [u8],
}

static EMBEDDED: &[EmbeddedPlugin] = include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Every plugin built into this binary, sorted by name.
pub fn embedded_plugins() -> &'static [EmbeddedPlugin] {
    EMBEDDED
}

/// The embedded plugin called `name`.
pub(crate) fn find(name: &str) -> Option<&'static EmbeddedPlugin> {
    EMBEDDED.iter().find(|p| p.name == name)
}

/// The embedded plugins' names, for messages.
pub(crate) fn names() -> String {
    if EMBEDDED.is_empty() {
        "this build embeds none".to_owned()
    } else {
        let names: Vec<&str> = EMBEDDED.iter().map(|p| p.name).collect();
        format!("embedded: {}", names.join(", "))
    }
}
