//! The providers' inventory outside the database: reading the bulk CSV files of
//! `armada import proxies|fingerprints` (pure functions, no IO), masking proxy credentials
//! for everything that shows a proxy to a person (logs, errors, the dashboard), and the
//! providers' wire types (`wire`), shared by the provider roles and their clients.
//!
//! Architecture invariant: imports no role and no engine but the `Store`'s plain types.

mod import;
pub mod wire;

pub use import::{ImportError, ImportFile, RowProblem, parse_fingerprints, parse_proxies};

/// The proxies template's example row (`http://USER:PASS@HOST:PORT`): skipped, never stored.
pub const TEMPLATE_PLACEHOLDER_URL: &str = "http://USER:PASS@HOST:PORT";

/// A proxy URL with its password replaced by `***` (`http://user:***@host:port`), safe to log
/// and show. Credentials given as a user name alone (`socks5://TOKEN@host`, how several
/// providers pass an API key) are a secret too, so they become `***@host`. Works on text that
/// is not a valid URL too (a scheme-less `user:pass@host:port`), since that is exactly what
/// error messages about bad URLs need to show.
pub fn mask_proxy_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}{user}:***@{host}{tail}"),
        None => format!("{scheme}***@{host}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_proxy_url;

    #[test]
    fn masking_hides_the_password_and_keeps_the_rest() {
        for (url, masked) in [
            ("http://user:pass@host:8000", "http://user:***@host:8000"),
            ("http://user:p%40ss@host:8000/path?q=1", "http://user:***@host:8000/path?q=1"),
            ("http://user:p@ss@host:8000", "http://user:***@host:8000"),
            ("socks5://token@host:1080", "socks5://***@host:1080"),
            ("user:pass@host:8000", "user:***@host:8000"),
            ("http://host:8000", "http://host:8000"),
            ("http://host:8000/a@b", "http://host:8000/a@b"),
            ("", ""),
        ] {
            assert_eq!(mask_proxy_url(url), masked, "for {url}");
        }
    }
}
