//! Who may talk to the server: the API key, the Host check against DNS rebinding, the
//! refusal of cross-origin writes, and the security headers of every response.
//!
//! - On a loopback address the server answers only requests whose `Host` is a
//!   loopback name (or one the user allowed): a web page whose name an attacker
//!   points at 127.0.0.1 cannot read the user's documents.
//! - Anywhere else an API key is required, as `Authorization: Bearer KEY` or as the
//!   session cookie the login page sets (a random token that expires, never the key
//!   itself; wrong keys are slowed down); the server refuses to start without one.
//! - Without a key, a request that came through a proxy or a tunnel (`Forwarded`,
//!   `X-Forwarded-*`) is refused: "no key on loopback" holds only for requests made
//!   on this machine, and a reverse proxy would otherwise open everything.
//! - A request that changes something and carries an `Origin` other than the
//!   server's own is refused, whatever the key: no other site can post to it.
//! - No CORS header is ever sent, so browsers keep other origins from reading replies.

use crate::keys::Principal;
use anyhow::{Result, bail};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Name of the cookie that carries the browser's session token.
pub const SESSION_COOKIE: &str = "docchat_session";
/// How long a sign-in lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Wrong keys accepted within [`LOGIN_WINDOW`] before sign-ins are refused (429)
/// until the window has passed.
const LOGIN_TRIES: usize = 5;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Shortest API key accepted.
pub const MIN_KEY_LEN: usize = 16;

const LOGIN_HTML: &str = include_str!("../web/login.html");

/// The server's access rules.
#[derive(Debug)]
pub struct Guard {
    /// The keys, each with who it is; every request needs one of them when there
    /// are any.
    keys: Vec<(String, Principal)>,
    /// Check `Host` (only when listening on loopback).
    check_host: bool,
    /// Host names allowed besides the loopback names.
    allowed_hosts: Vec<String>,
    /// Session tokens of signed-in browsers, with their expiry and who signed in.
    sessions: Mutex<HashMap<String, (Instant, Principal)>>,
    /// When the recent wrong keys were given at `/login`.
    wrong_logins: Mutex<VecDeque<Instant>>,
}

/// Whether `host` (an address or a name) is loopback only.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Guard {
    /// The rules for a server listening on `host`. Refuses a non-loopback address
    /// without a key, and a key too short to resist guessing.
    pub fn new(host: &str, api_key: Option<String>, allowed_hosts: Vec<String>) -> Result<Self> {
        let api_key = api_key
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        if let Some(k) = &api_key
            && (k.len() < MIN_KEY_LEN || k.chars().any(|c| c.is_whitespace() || c == ';'))
        {
            bail!(
                "the API key must be at least {MIN_KEY_LEN} characters, without spaces or ';' \
                 (for example: openssl rand -hex 24)"
            );
        }
        let loopback = is_loopback(host);
        if !loopback && api_key.is_none() {
            bail!(
                "refusing to listen on {host} without an API key: anyone on the network could \
                 read your documents. Set DOCCHAT_API_KEY (or --api-key-file FILE) to a secret \
                 of at least {MIN_KEY_LEN} characters, or listen on 127.0.0.1"
            );
        }
        Ok(Self {
            keys: api_key
                .into_iter()
                .map(|k| (k, Principal::everyone()))
                .collect(),
            check_host: loopback,
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            sessions: Mutex::default(),
            wrong_logins: Mutex::default(),
        })
    }

    /// The same rules with the keys of `keys.toml` instead of the one key: each
    /// with a name and the collections it may read. Refused when a key is too
    /// short.
    pub fn with_keys(mut self, keys: Vec<(String, Principal)>) -> Result<Self> {
        if keys.is_empty() {
            return Ok(self);
        }
        for (k, p) in &keys {
            if k.len() < MIN_KEY_LEN || k.chars().any(|c| c.is_whitespace() || c == ';') {
                bail!(
                    "the key of {:?} must be at least {MIN_KEY_LEN} characters, without spaces or ';'",
                    p.name()
                );
            }
        }
        self.keys = keys;
        Ok(self)
    }

    /// A new session token for a browser that gave the key of `who`.
    fn open_session_as(&self, who: Principal) -> std::io::Result<String> {
        let token = secret_hex(32)?;
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, (until, _)| *until > now);
        sessions.insert(token.clone(), (now + SESSION_TTL, who));
        Ok(token)
    }

    #[cfg(test)]
    fn open_session(&self) -> std::io::Result<String> {
        self.open_session_as(Principal::everyone())
    }

    fn session_of(&self, token: &str) -> Option<Principal> {
        let now = Instant::now();
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(t, (until, _))| *until > now && same(t.as_bytes(), token.as_bytes()))
            .map(|(_, (_, who))| who.clone())
    }

    /// Whether sign-ins are refused now (too many wrong keys of late).
    fn logins_blocked(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut wrong = self
            .wrong_logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while wrong
            .front()
            .is_some_and(|t| now.duration_since(*t) > LOGIN_WINDOW)
        {
            wrong.pop_front();
        }
        (wrong.len() >= LOGIN_TRIES).then(|| {
            LOGIN_WINDOW.saturating_sub(
                wrong
                    .front()
                    .map_or(Duration::ZERO, |t| now.duration_since(*t)),
            )
        })
    }

    fn wrong_login(&self) {
        self.wrong_logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(Instant::now());
    }

    /// Whether requests need the key.
    pub fn needs_key(&self) -> bool {
        !self.keys.is_empty()
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        if !self.check_host {
            return true;
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            // HTTP/1.0 without Host: nothing a browser sends.
            return true;
        };
        let name = host_name(host).to_ascii_lowercase();
        is_loopback(&name) || self.allowed_hosts.contains(&name)
    }

    #[cfg(test)]
    fn key_matches(&self, headers: &HeaderMap) -> bool {
        self.principal_of(headers).is_some()
    }

    /// Who the request comes from: the holder of the key it carries (as
    /// `Authorization: Bearer KEY` or a signed-in session), everyone when the
    /// server has no key, `None` when it carries no valid one.
    fn principal_of(&self, headers: &HeaderMap) -> Option<Principal> {
        if self.keys.is_empty() {
            return Some(Principal::everyone());
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(given) = bearer {
            // Every key is compared, so the time taken says nothing of which
            // one matched.
            let mut found = None;
            for (key, who) in &self.keys {
                if same(given.as_bytes(), key.as_bytes()) {
                    found = Some(who.clone());
                }
            }
            if found.is_some() {
                return found;
            }
        }
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(name, _)| *name == SESSION_COOKIE)
            .find_map(|(_, token)| self.session_of(token))
    }
}

/// `bytes` random bytes from the system, as hex.
fn secret_hex(bytes: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether the request came through a proxy or a tunnel that says so.
fn proxied(headers: &HeaderMap) -> bool {
    headers.contains_key(header::FORWARDED)
        || headers
            .keys()
            .any(|k| k.as_str().starts_with("x-forwarded-"))
}

/// The host name of a `Host` header value (without the port).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request from a page at `origin` to this server (`host`) is same-origin.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

fn refuse(status: StatusCode, path: &str, code: &str, message: &str) -> Response {
    // The OpenAI endpoints answer in OpenAI's error shape, the rest in docchat's.
    let body = if path.starts_with("/v1") {
        json!({"error": {"message": message, "type": "invalid_request_error",
                         "param": null, "code": code}})
    } else {
        json!({"error": {"message": message, "code": code}})
    };
    (status, axum::Json(body)).into_response()
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The middleware: checks every request against the guard.
pub async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let headers = req.headers();
    if !guard.host_allowed(headers) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            &path,
            "host_not_allowed",
            "this server answers only to localhost, 127.0.0.1 and [::1] (DNS rebinding \
             protection); add other names with --allowed-host",
        );
    }
    if !guard.needs_key() && proxied(headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            &path,
            "proxied_without_key",
            "this request came through a proxy or a tunnel, and docchat has no API key: \
             set DOCCHAT_API_KEY (or --api-key-file FILE) before serving it beyond this machine",
        );
    }
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
    if writes
        && let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !same_origin(
            origin,
            headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        )
    {
        return refuse(
            StatusCode::FORBIDDEN,
            &path,
            "cross_origin",
            "requests from other sites are refused",
        );
    }
    let login = path == "/login" || path == "/style.css" || path == "/i18n.js";
    let who = guard.principal_of(headers);
    if !login && who.is_none() {
        if *req.method() == Method::GET && wants_html(headers) {
            return Redirect::to("/login").into_response();
        }
        let mut res = refuse(
            StatusCode::UNAUTHORIZED,
            &path,
            "invalid_api_key",
            "a valid API key is required: send it as Authorization: Bearer KEY",
        );
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return res;
    }
    let mut req = req;
    req.extensions_mut()
        .insert(who.unwrap_or_else(Principal::nobody));
    let mut res = next.run(req).await;
    secure_headers(res.headers_mut());
    res
}

/// Headers every response carries; a response that set its own policy keeps it.
fn secure_headers(h: &mut HeaderMap) {
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("SAMEORIGIN"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'self'; form-action 'self'; base-uri 'none'",
        ));
}

/// `GET /login`: the form that asks for the key (saying so after a wrong one).
pub async fn login_page(uri: axum::http::Uri) -> Html<String> {
    let wrong = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "wrong=1"));
    let message = if wrong {
        r#"<p class="error" role="alert" data-i18n="wrong_key">That key is not right.</p>"#
    } else {
        ""
    };
    Html(LOGIN_HTML.replace("<!--MESSAGE-->", message))
}

/// The login form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    key: String,
}

/// `POST /login`: a right key opens a session (its token in the cookie) and goes
/// to the workstation; after [`LOGIN_TRIES`] wrong keys in a minute, 429.
pub async fn login(
    State(guard): State<Arc<Guard>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    if let Some(wait) = guard.logins_blocked() {
        let mut res = (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong keys: try again in a minute.",
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&(wait.as_secs() + 1).to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let key = form.key.trim();
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, {
        let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}")) else {
            return Redirect::to("/login?wrong=1").into_response();
        };
        v
    });
    let who = match guard.principal_of(&headers) {
        Some(who) if guard.needs_key() => who,
        _ => {
            guard.wrong_login();
            return Redirect::to("/login?wrong=1").into_response();
        }
    };
    let token = match guard.open_session_as(who) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot make a session token");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict",
        SESSION_TTL.as_secs()
    );
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return Redirect::to("/login?wrong=1").into_response();
    };
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    res
}

/// A response for an HTML document of the user's: shown, never run (its scripts
/// would otherwise run with the workstation's rights).
pub fn sandboxed(res: &mut Response<Body>) {
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_names() {
        for h in ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "0.0.0.0",
            "::",
            "192.168.1.4",
            "example.com",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn open_address_needs_a_long_key() {
        let err = Guard::new("0.0.0.0", None, vec![]).unwrap_err().to_string();
        assert!(err.contains("without an API key"), "{err}");
        assert!(Guard::new("0.0.0.0", Some("short".into()), vec![]).is_err());
        assert!(Guard::new("0.0.0.0", Some("a".repeat(16)), vec![]).is_ok());
        assert!(Guard::new("127.0.0.1", None, vec![]).is_ok());
    }

    #[test]
    fn host_check_only_on_loopback() {
        let g = Guard::new("127.0.0.1", None, vec!["docs.lan".into()]).unwrap();
        for ok in [
            "127.0.0.1:8080",
            "localhost:1",
            "[::1]:80",
            "localhost",
            "DOCS.lan:9",
        ] {
            assert!(g.host_allowed(&headers(&[(header::HOST, ok)])), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.nip.io",
            "localhost.evil.com:80",
        ] {
            assert!(!g.host_allowed(&headers(&[(header::HOST, bad)])), "{bad}");
        }
        let open = Guard::new("0.0.0.0", Some("k".repeat(20)), vec![]).unwrap();
        assert!(open.host_allowed(&headers(&[(header::HOST, "anything:1")])));
    }

    #[test]
    fn key_from_bearer_or_session_cookie() {
        let key = "0123456789abcdef0123";
        let g = Guard::new("0.0.0.0", Some(key.into()), vec![]).unwrap();
        assert!(g.key_matches(&headers(&[(
            header::AUTHORIZATION,
            &format!("Bearer {key}")
        )])));
        let token = g.open_session().unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, g.open_session().unwrap());
        assert!(g.key_matches(&headers(&[(
            header::COOKIE,
            &format!("theme=dark; {SESSION_COOKIE}={token}")
        )])));
        // The key itself is no session.
        assert!(!g.key_matches(&headers(&[(
            header::COOKIE,
            &format!("{SESSION_COOKIE}={key}")
        )])));
        assert!(!g.key_matches(&headers(&[(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef0124"
        )])));
        assert!(!g.key_matches(&headers(&[(
            header::COOKIE,
            &format!("x{SESSION_COOKIE}={token}")
        )])));
        assert!(!g.key_matches(&HeaderMap::new()));
    }

    #[test]
    fn wrong_keys_block_sign_ins_for_a_while() {
        let g = Guard::new("0.0.0.0", Some("k".repeat(20)), vec![]).unwrap();
        for _ in 0..LOGIN_TRIES {
            assert!(g.logins_blocked().is_none());
            g.wrong_login();
        }
        let wait = g.logins_blocked().expect("blocked");
        assert!(
            wait <= LOGIN_WINDOW && wait > Duration::from_secs(50),
            "{wait:?}"
        );
    }

    #[test]
    fn forwarded_requests_are_recognised() {
        assert!(proxied(&headers(&[(header::FORWARDED, "for=1.2.3.4")])));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        assert!(proxied(&h));
        assert!(!proxied(&headers(&[(header::HOST, "127.0.0.1:1")])));
    }

    #[test]
    fn origins() {
        assert!(same_origin("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!same_origin("http://evil.example", Some("127.0.0.1:8080")));
        assert!(!same_origin("null", Some("127.0.0.1:8080")));
        assert!(!same_origin(
            "http://127.0.0.1:8081",
            Some("127.0.0.1:8080")
        ));
    }
}
