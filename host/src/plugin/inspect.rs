//! Load-time checks: is this a component, which contract version does it
//! target, is it the kind of plugin asked for, and does it import only what
//! plugins are granted.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::PluginError;
use super::sandbox::{
    BASE_VERSION, ImportVerdict, WIT_PACKAGE, WIT_VERSIONS, WIT_VERSIONS_TEXT, check_import,
};

/// The kinds of plugin this host loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// A server adapter (`export adapter`).
    Adapter,
    /// An SLO policy (`export slo-policy`).
    Slo,
    /// A recommendation policy (`export recommend-policy`).
    Recommend,
}

impl PluginKind {
    /// The kind's name in listings: `adapter`, `slo` or `recommend`.
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Adapter => "adapter",
            PluginKind::Slo => "slo",
            PluginKind::Recommend => "recommend",
        }
    }

    /// The interface a plugin of this kind exports.
    fn interface(self) -> &'static str {
        match self {
            PluginKind::Adapter => "adapter",
            PluginKind::Slo => "slo-policy",
            PluginKind::Recommend => "recommend-policy",
        }
    }
}

/// Each interface a plugin may export, with the contract versions that define it. 0.2 defined
/// only a new `adapter` (with `feed-batch`); every other interface is 0.1's in both.
const EXPORTS: &[(&str, &[&str])] = &[
    ("adapter", &["0.1.0", "0.2.0"]),
    ("tokenizer", &[BASE_VERSION]),
    ("slo-policy", &[BASE_VERSION]),
    ("recommend-policy", &[BASE_VERSION]),
];

/// The interface and version of `name` when it is one of ours that a plugin may export.
fn own_export(name: &str) -> Option<(&'static str, &'static str)> {
    let (iface, version) = name
        .strip_prefix(WIT_PACKAGE)?
        .strip_prefix('/')?
        .split_once('@')?;
    EXPORTS.iter().find_map(|&(i, versions)| {
        let v = versions.iter().find(|&&v| v == version)?;
        (i == iface).then_some((i, *v))
    })
}

/// The optional interface a tokenizing adapter exports beside `adapter`, with its version.
pub(crate) fn tokenizer_export_name() -> String {
    format!("{WIT_PACKAGE}/tokenizer@{BASE_VERSION}")
}

/// What a component imports and exports, by name.
#[derive(Debug, Clone)]
pub(crate) struct ComponentFacts {
    pub(crate) imports: Vec<String>,
    pub(crate) exports: Vec<String>,
}

const MAGIC: &[u8; 4] = b"\0asm";
/// The version + layer fields of a component (a core module has 1, 0, 0, 0).
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// Refuse anything that is not a WebAssembly component, with a one-line
/// reason, before spending time compiling it.
pub(crate) fn check_header(plugin: &str, bytes: &[u8]) -> Result<(), PluginError> {
    let reason = if bytes.len() < 8 || &bytes[..4] != MAGIC {
        "not a WebAssembly file (no `\\0asm` header)".to_owned()
    } else if bytes[4..8] == CORE_MODULE_VERSION {
        "a core WebAssembly module, not a component: build the plugin for the \
         wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
            .to_owned()
    } else if bytes[4..8] != COMPONENT_VERSION {
        format!(
            "a WebAssembly binary of an unsupported version/layer ({:02x?})",
            &bytes[4..8]
        )
    } else {
        return Ok(());
    };
    Err(PluginError::NotAComponent {
        plugin: plugin.to_owned(),
        reason,
    })
}

/// Read a compiled component's imports and exports.
pub(crate) fn facts(engine: &Engine, component: &Component) -> ComponentFacts {
    let ty = component.component_type();
    ComponentFacts {
        imports: ty.imports(engine).map(|(n, _)| n.to_owned()).collect(),
        exports: ty.exports(engine).map(|(n, _)| n.to_owned()).collect(),
    }
}

/// The version of our package named in `name`, if `name` is one of ours.
fn own_version(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(WIT_PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').map_or("", |(_, v)| v))
}

/// Which kind of plugin the component is, judged by its exports.
pub(crate) fn detect_kind(facts: &ComponentFacts) -> Option<PluginKind> {
    [PluginKind::Adapter, PluginKind::Slo, PluginKind::Recommend]
        .into_iter()
        .find(|k| {
            facts
                .exports
                .iter()
                .any(|e| own_export(e).is_some_and(|(i, _)| i == k.interface()))
        })
}

impl ComponentFacts {
    /// The contract version the component was built for: the newest version among its own
    /// exports (a 0.2 adapter exports `adapter@0.2.0` beside 0.1's `tokenizer`).
    pub(crate) fn contract_version(&self) -> &'static str {
        self.exports
            .iter()
            .filter_map(|e| own_export(e))
            .map(|(_, v)| v)
            .max_by_key(|v| WIT_VERSIONS.iter().position(|w| w == v))
            .unwrap_or(BASE_VERSION)
    }
}

/// Check a component against the contract; `want` is the kind asked for,
/// or `None` to accept either kind. Returns the kind it is.
pub(crate) fn check_contract(
    plugin: &str,
    facts: &ComponentFacts,
    want: Option<PluginKind>,
) -> Result<PluginKind, PluginError> {
    // A version mismatch explains every later failure, so it goes first.
    for name in facts.exports.iter().chain(facts.imports.iter()) {
        if let Some(v) = own_version(name)
            && !WIT_VERSIONS.contains(&v)
        {
            return Err(PluginError::WrongWitVersion {
                plugin: plugin.to_owned(),
                found: if v.is_empty() {
                    "(unversioned)".to_owned()
                } else {
                    v.to_owned()
                },
                supported: WIT_VERSIONS_TEXT,
            });
        }
    }
    let kind = match (want, detect_kind(facts)) {
        (Some(want), Some(is)) if want == is => is,
        (None, Some(is)) => is,
        (want, _) => {
            return Err(PluginError::WrongKind {
                plugin: plugin.to_owned(),
                expected: match want {
                    Some(PluginKind::Adapter) => {
                        "the adapter interface (llm-loadtest:plugin/adapter@0.1.0 or @0.2.0)"
                    }
                    Some(PluginKind::Slo) => {
                        "the slo-policy interface (llm-loadtest:plugin/slo-policy@0.1.0)"
                    }
                    Some(PluginKind::Recommend) => {
                        "the recommend-policy interface (llm-loadtest:plugin/recommend-policy@0.1.0)"
                    }
                    None => {
                        "a plugin interface (llm-loadtest:plugin/adapter @0.1.0 or @0.2.0, \
                         slo-policy or recommend-policy @0.1.0)"
                    }
                },
                exports: if facts.exports.is_empty() {
                    "nothing".to_owned()
                } else {
                    facts.exports.join(", ")
                },
            });
        }
    };
    for name in &facts.imports {
        match check_import(name) {
            ImportVerdict::Granted => {}
            ImportVerdict::OtherWitVersion(found) => {
                return Err(PluginError::WrongWitVersion {
                    plugin: plugin.to_owned(),
                    found,
                    supported: WIT_VERSIONS_TEXT,
                });
            }
            ImportVerdict::Forbidden => {
                return Err(PluginError::ForbiddenImport {
                    plugin: plugin.to_owned(),
                    import: name.clone(),
                });
            }
        }
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(imports: &[&str], exports: &[&str]) -> ComponentFacts {
        ComponentFacts {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn header_tells_core_modules_and_text_apart() {
        let core = [b"\0asm".as_slice(), &CORE_MODULE_VERSION].concat();
        let err = check_header("x", &core).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let err = check_header("x", b"hello, world\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a WebAssembly file"), "{err}");
        let err = check_header("x", b"").unwrap_err().to_string();
        assert!(err.contains("not a WebAssembly file"), "{err}");
        let component = [b"\0asm".as_slice(), &COMPONENT_VERSION].concat();
        assert!(check_header("x", &component).is_ok());
    }

    #[test]
    fn contract_checks_name_what_is_wrong() {
        let adapter = "llm-loadtest:plugin/adapter@0.1.0";
        let host = "llm-loadtest:plugin/host@0.1.0";
        let ok = facts(&[host, "wasi:cli/stderr@0.2.6"], &[adapter]);
        assert_eq!(
            check_contract("p", &ok, Some(PluginKind::Adapter)).unwrap(),
            PluginKind::Adapter
        );
        assert_eq!(check_contract("p", &ok, None).unwrap(), PluginKind::Adapter);

        let err = check_contract("p", &ok, Some(PluginKind::Slo)).unwrap_err();
        assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");
        let err = check_contract("p", &ok, Some(PluginKind::Recommend)).unwrap_err();
        assert!(err.to_string().contains("recommend-policy"), "{err}");
        let policy = facts(&[host], &["llm-loadtest:plugin/recommend-policy@0.1.0"]);
        assert_eq!(
            check_contract("p", &policy, None).unwrap(),
            PluginKind::Recommend
        );

        let v2 = facts(
            &[host],
            &[
                "llm-loadtest:plugin/adapter@0.2.0",
                "llm-loadtest:plugin/tokenizer@0.1.0",
            ],
        );
        assert_eq!(check_contract("p", &v2, None).unwrap(), PluginKind::Adapter);
        assert_eq!(v2.contract_version(), "0.2.0");
        assert_eq!(ok.contract_version(), "0.1.0");
        // 0.2 defined no new slo-policy: such an export is no plugin this host knows.
        let slo_v2 = facts(&[host], &["llm-loadtest:plugin/slo-policy@0.2.0"]);
        let err = check_contract("p", &slo_v2, None).unwrap_err();
        assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");

        let newer = facts(
            &["llm-loadtest:plugin/host@0.3.0"],
            &["llm-loadtest:plugin/adapter@0.3.0"],
        );
        match check_contract("p", &newer, Some(PluginKind::Adapter)).unwrap_err() {
            PluginError::WrongWitVersion {
                found, supported, ..
            } => {
                assert_eq!(found, "0.3.0");
                assert_eq!(supported, "@0.1.0 and @0.2.0");
            }
            other => panic!("unexpected {other}"),
        }

        let fs = facts(&[host, "wasi:filesystem/preopens@0.2.6"], &[adapter]);
        match check_contract("p", &fs, Some(PluginKind::Adapter)).unwrap_err() {
            PluginError::ForbiddenImport { import, .. } => {
                assert_eq!(import, "wasi:filesystem/preopens@0.2.6")
            }
            other => panic!("unexpected {other}"),
        }
    }
}
