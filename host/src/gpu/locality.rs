//! Whether a server runs on this machine, as far as its address says: only then are this
//! machine's GPUs the server's (for `recommend`'s GPU type and for sampling during a run).

/// Whether `server`'s host is this machine by address: `localhost` or a loopback IP.
pub fn is_loopback(server: &str) -> bool {
    let Some(host) = server
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
    else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        for url in [
            "http://127.0.0.1:8000",
            "http://localhost:1",
            "http://[::1]:80/v1",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://10.0.0.5:8000",
            "https://api.example.com",
            "not a url",
            "",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
