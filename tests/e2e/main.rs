//! End-to-end tests: the real engine, plugins and binary against servers on
//! 127.0.0.1 (the built-in simulator, bound to port 0).
mod conformance;
mod gpu_cli;
mod plugin_cache;
mod plugin_cli;
mod plugin_compat;
mod plugin_replay;
mod plugin_sandbox;
mod plugin_support;
mod recommend;
mod recommend_cli;
mod run_cli;
mod run_connections;
mod run_errors;
mod run_exits;
mod run_metric_modes;
mod run_metrics;
mod run_protocols;
mod run_tls;
mod run_tokenize;
mod server_metrics;
mod store_html;
mod store_kill;
mod store_roundtrip;
mod store_shared;
mod store_support;
mod support;
