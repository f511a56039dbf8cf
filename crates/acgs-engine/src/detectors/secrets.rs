//! Secret detectors: PEM private keys, provider access keys, JWTs, bearer tokens and generic high-entropy API keys (assigned or standalone), with their patterns and plausibility checks.

use super::{Detection, DetectionKind, Detectors, Retry, byte_before, detection, find_validated};

// ---------------------------------------------------------------------------------------------
// Patterns. All are constants; `Detectors::new` compiles them once.
// Classes are spelled `[0-9]` (not `\d`, which is Unicode-wide) and word boundaries are the ASCII
// `(?-u:\b)`, which keeps every regex on the fast lazy-DFA path for any input. Matches of a `&str`
// regex are on char boundaries, and validators only ever move a span end to an ASCII byte.
// ---------------------------------------------------------------------------------------------

/// PEM private key armour (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP "PRIVATE KEY BLOCK", plain).
pub(super) const PEM_BEGIN: &str = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----";
/// The matching end armour.
pub(super) const PEM_END: &str = r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----";
/// Base64 body lines after a BEGIN line without an END (a truncated key): lines of at least 16
/// base64 characters, then possibly one short padded line.
pub(super) const PEM_BODY: &str =
    r"\A(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/]{16,}={0,2})*(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/]{1,15}={1,2})?";

/// Provider keys with well-known prefixes. The trailing boundary is checked in code (a Google key
/// may end in `-`, after which `\b` would not hold).
pub(super) const CLOUD: &str = concat!(
    r"(?-u:\b)(?:",
    r"(?:AKIA|ASIA)[A-Z0-9]{16}",
    r"|AIza[0-9A-Za-z_\-]{35}",
    r"|gh[pousr]_[A-Za-z0-9]{36,251}",
    r"|github_pat_[A-Za-z0-9_]{22,255}",
    r"|xox[baprs]-[A-Za-z0-9\-]{10,250}",
    r"|(?:sk|rk)_live_[A-Za-z0-9]{24,247}",
    r")",
);

/// Three base64url segments (the last may be empty for unsigned tokens), header starting `eyJ`
/// (base64 of `{"`).
pub(super) const JWT: &str = r"(?-u:\b)eyJ[A-Za-z0-9_\-]{7,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*";

/// `Bearer <token68>`; the token is capture group 1.
pub(super) const BEARER: &str = r"(?-u:\b)(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]+=*)";

/// A key-like name (with an optional rest, capture group 1, such as `_access_key`), an
/// assignment operator with optional quotes, and the value as capture group 2.
pub(super) const ASSIGNMENT: &str = concat!(
    r"(?i)(?:api[_\-]?key|secret|token|passw(?:or)?d|pwd|credentials?|access[_\-]?key|private[_\-]?key)",
    r#"([A-Za-z0-9_.\-]{0,32})["']?[ \t]*(?:=>|:=|[:=])[ \t]*["']?"#,
    r#"([^\s"'`,;<>(){}\[\]\\]{16,})"#,
);

/// Last words of a key name that say the value is about a secret, not the secret itself
/// (`SECRET_NAME`, `token_url`, `password_file`, `TOKEN_EXPIRY`).
const NON_SECRET_NAME_ENDINGS: &[&str] = &[
    "name",
    "file",
    "path",
    "dir",
    "url",
    "uri",
    "endpoint",
    "type",
    "kind",
    "expiry",
    "expires",
    "expiration",
    "ttl",
    "length",
    "len",
    "count",
    "header",
    "field",
    "version",
    "prefix",
    "env",
    "arn",
    "ref",
    "label",
    "format",
    "policy",
    "mode",
];

/// Maximal runs of base64/base64url/token characters at least 32 long.
pub(super) const STANDALONE: &str = r"[A-Za-z0-9+/=_\-]{32,}";

/// Subresource-integrity / lockfile hash prefixes (`sha512-<base64>`): digests, not secrets.
const SRI_PREFIXES: &[&[u8]] = &[b"sha1-", b"sha256-", b"sha384-", b"sha512-"];
/// A standalone token whose lowercase runs of 4+ letters cover at least this share of it reads
/// like words (`veryLongVariableName2024`), not like random characters (about 1% of random
/// 32-char base64 tokens reach it, far fewer of longer ones).
const MAX_WORDLIKE_SHARE: f64 = 0.35;
/// Minimum Shannon entropy (bits per char) of an assigned secret's value.
const ASSIGNMENT_MIN_ENTROPY: f64 = 3.5;
/// Minimum Shannon entropy (bits per char) of a standalone token.
const STANDALONE_MIN_ENTROPY: f64 = 4.0;
/// Minimum length of an assigned value and of a bearer token.
pub(super) const MIN_SECRET_LEN: usize = 16;
/// Minimum length of a standalone token.
pub(super) const MIN_STANDALONE_LEN: usize = 32;

impl Detectors {
    pub(super) fn scan_pem(&self, text: &str, out: &mut Vec<Detection>) {
        let mut pos = 0;
        // Once no END is found, none will be for later BEGINs either: do not search again
        // (keeps many unterminated BEGIN lines linear).
        let mut ends_left = true;
        while let Some(begin) = self.pem_begin.find_at(text, pos) {
            let end_marker = if ends_left {
                self.pem_end.find_at(text, begin.end())
            } else {
                None
            };
            ends_left = end_marker.is_some();
            let end = match end_marker {
                Some(end) => end.end(),
                None => {
                    // Truncated key: cover the base64 body lines that follow the BEGIN line.
                    let body = self.pem_body.find(&text[begin.end()..]).map_or(0, |m| m.end());
                    begin.end() + body
                }
            };
            out.push(detection(DetectionKind::PrivateKey, begin.start(), end));
            pos = end;
        }
    }

    pub(super) fn scan_cloud(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(
            &self.cloud,
            text,
            Retry::AfterMatch,
            out,
            DetectionKind::CloudAccessKey,
            |s, e| {
                let glued = bytes
                    .get(e)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
                (!glued).then_some((s, e))
            },
        );
    }

    pub(super) fn scan_jwt(&self, text: &str, out: &mut Vec<Detection>) {
        for m in self.jwt.find_iter(text) {
            out.push(detection(DetectionKind::Jwt, m.start(), m.end()));
        }
    }

    pub(super) fn scan_bearer(&self, text: &str, out: &mut Vec<Detection>) {
        for caps in self.bearer.captures_iter(text) {
            let Some(token) = caps.get(1) else { continue };
            let t = token.as_str().as_bytes();
            let has_digit = t.iter().any(u8::is_ascii_digit);
            let mixed_case = t.iter().any(u8::is_ascii_uppercase) && t.iter().any(u8::is_ascii_lowercase);
            // "the bearer internationalisation..." is prose, not a credential.
            if t.len() >= MIN_SECRET_LEN && (has_digit || mixed_case) {
                out.push(detection(DetectionKind::BearerToken, token.start(), token.end()));
            }
        }
    }

    pub(super) fn scan_assignment(&self, text: &str, out: &mut Vec<Detection>) {
        for caps in self.assignment.captures_iter(text) {
            let (Some(name_end), Some(value)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            let last_word = name_end.as_str().rsplit(['_', '-', '.']).next().unwrap_or("");
            if NON_SECRET_NAME_ENDINGS
                .iter()
                .any(|w| w.eq_ignore_ascii_case(last_word))
            {
                continue;
            }
            let v = value.as_str();
            if v.chars().count() >= MIN_SECRET_LEN && shannon_entropy(v.as_bytes()) >= ASSIGNMENT_MIN_ENTROPY {
                out.push(detection(DetectionKind::ApiKey, value.start(), value.end()));
            }
        }
    }

    pub(super) fn scan_standalone(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        let mut url = UrlTracker::default();
        for m in self.standalone.find_iter(text) {
            let (mut s, e) = (m.start(), m.end());
            // `=` is base64 padding only at the end; an inner one is an assignment
            // (`KEY=value`): keep the value.
            let padding = bytes[s..e].iter().rev().take_while(|b| **b == b'=').count();
            if let Some(eq) = bytes[s..e - padding].iter().rposition(|b| *b == b'=') {
                s += eq + 1;
            }
            // Hostnames, emails, data URIs, URL paths and queries, integrity hashes.
            if matches!(byte_before(bytes, s), Some(b'.' | b'@'))
                || bytes[..s].ends_with(b"base64,")
                || url.in_url(bytes, s)
                || SRI_PREFIXES.iter().any(|p| bytes[s..e].starts_with(p))
            {
                continue;
            }
            if standalone_token_plausible(&bytes[s..e]) {
                out.push(detection(DetectionKind::ApiKey, s, e));
            }
        }
    }
}

/// Shannon entropy in bits per byte.
fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = ratio(c, bytes.len());
            -p * p.log2()
        })
        .sum()
}

/// Whether a standalone token run looks like a random secret: at least 32 chars, upper- and
/// lowercase letters and digits (this excludes hex digests, which have one case), few `/`, `-`,
/// `_` separators (paths, slugs and identifiers have many) and entropy of at least 4.0 bits/char.
fn standalone_token_plausible(token: &[u8]) -> bool {
    let len = token.len();
    let mut upper = false;
    let mut lower = false;
    let mut digit = false;
    let mut separators = 0;
    for &b in token {
        upper |= b.is_ascii_uppercase();
        lower |= b.is_ascii_lowercase();
        digit |= b.is_ascii_digit();
        separators += usize::from(matches!(b, b'/' | b'-' | b'_'));
    }
    len >= MIN_STANDALONE_LEN
        && upper
        && lower
        && digit
        && separators * 10 <= len
        && wordlike_share(token) < MAX_WORDLIKE_SHARE
        && shannon_entropy(token) >= STANDALONE_MIN_ENTROPY
}

/// Share of `token` covered by runs of at least four lowercase ASCII letters.
fn wordlike_share(token: &[u8]) -> f64 {
    let mut covered = 0usize;
    let mut run = 0usize;
    for &b in token.iter().chain(std::iter::once(&b' ')) {
        if b.is_ascii_lowercase() {
            run += 1;
        } else {
            if run >= 4 {
                covered += run;
            }
            run = 0;
        }
    }
    ratio(covered, token.len())
}

#[expect(clippy::cast_precision_loss, reason = "text lengths are far below 2^52")]
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// Whether bytes are inside a URL, asked at increasing offsets of one text. Each byte is read once,
/// where looking back over the last 2 KiB at every token read up to 64 times the text (0.1 s for
/// 1 MiB of comma-separated tokens).
#[derive(Default)]
struct UrlTracker {
    /// Bytes before this offset have been read.
    read: usize,
    /// Start of the whitespace-delimited word at `read`.
    word_start: usize,
    /// Start of the last `://` read.
    scheme: Option<usize>,
}

impl UrlTracker {
    /// Whether the byte at `at` (at or after the previous `at`) is inside a URL: the
    /// whitespace-delimited word around it contains `://` before it (only the last 2 KiB are looked
    /// at).
    fn in_url(&mut self, bytes: &[u8], at: usize) -> bool {
        let at = at.min(bytes.len());
        while self.read < at {
            let i = self.read;
            if bytes[i].is_ascii_whitespace() {
                self.word_start = i + 1;
            } else if i >= 2 && &bytes[i - 2..=i] == b"://" {
                self.scheme = Some(i - 2);
            }
            self.read += 1;
        }
        self.scheme
            .is_some_and(|scheme| scheme >= self.word_start && scheme >= at.saturating_sub(2048))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::tests::{found, kinds};

    #[test]
    fn private_key_blocks() {
        let pem = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq98TK\n-----END RSA PRIVATE KEY-----\nbye";
        assert_eq!(
            found(pem, DetectionKind::PrivateKey),
            ["-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq98TK\n-----END RSA PRIVATE KEY-----"]
        );
        for header in [
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        ] {
            assert_eq!(found(&format!("x {header} y"), DetectionKind::PrivateKey), [header]);
        }
        // Truncated: the header and the base64 body lines.
        let truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\nAAAAAA==\nthat's all";
        assert_eq!(
            found(truncated, DetectionKind::PrivateKey),
            ["-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\nAAAAAA=="]
        );
        // The body is not double-reported as a generic key.
        let long = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
        );
        assert_eq!(kinds(&long), [DetectionKind::PrivateKey]);
    }

    #[test]
    fn private_key_negatives() {
        for text in [
            "-----BEGIN PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----",
            "BEGIN RSA PRIVATE KEY",
            "the private key is stored in a vault",
        ] {
            assert!(found(text, DetectionKind::PrivateKey).is_empty(), "{text}");
        }
    }

    #[test]
    fn cloud_access_keys() {
        let cases = [
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "AIzaSyA1234567890abcdefghijklmnopqrstu-",
            "ghp_1234567890abcdefghijklmnopqrstuvwxyz",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab",
            "xoxb-2048-1234567890-AbCdEfGhIjKl",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_51H8abcdefghijklmnopqrstuv",
        ];
        for key in cases {
            let text = format!("key \"{key}\" here");
            assert_eq!(found(&text, DetectionKind::CloudAccessKey), [key], "{key}");
            assert!(found(&text, DetectionKind::ApiKey).is_empty(), "{key} double-reported");
        }
        let aws = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE";
        assert_eq!(kinds(aws), [DetectionKind::CloudAccessKey]);
    }

    #[test]
    fn cloud_key_negatives() {
        for text in [
            "AKIAIOSFODNN7EXAMPL",   // 15 after prefix
            "AKIAIOSFODNN7EXAMPLEX", // 17 after prefix
            "xAKIAIOSFODNN7EXAMPLE",
            "akiaiosfodnn7example",
            "ghp_short",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "xoxb-short",
        ] {
            assert!(found(text, DetectionKind::CloudAccessKey).is_empty(), "{text}");
        }
    }

    const JWT_SAMPLE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn jwt_found() {
        let text = format!("token {JWT_SAMPLE}.");
        assert_eq!(found(&text, DetectionKind::Jwt), [JWT_SAMPLE]);
        assert_eq!(kinds(&text), [DetectionKind::Jwt]);
        let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
        assert_eq!(found(unsigned, DetectionKind::Jwt), [unsigned]);
    }

    #[test]
    fn jwt_assigned_is_not_also_a_generic_key() {
        let text = format!("token={JWT_SAMPLE}");
        assert_eq!(kinds(&text), [DetectionKind::Jwt]);
        assert_eq!(found(&text, DetectionKind::Jwt), [JWT_SAMPLE]);
    }

    #[test]
    fn jwt_negatives() {
        for text in [
            "eyJ.abc.def",
            "heyJude.eyJhbGciOiJIUzI1NiJ9.sig",
            "eyJhbGciOiJIUzI1NiJ9 only one segment",
        ] {
            assert!(found(text, DetectionKind::Jwt).is_empty(), "{text}");
        }
    }

    #[test]
    fn bearer_token_found() {
        let text = "Authorization: Bearer abcDEF123456ghiJKL789\r\n";
        assert_eq!(found(text, DetectionKind::BearerToken), ["abcDEF123456ghiJKL789"]);
        assert_eq!(
            found("authorization: bearer 0123456789abcdef0123", DetectionKind::BearerToken),
            ["0123456789abcdef0123"]
        );
        // A JWT bearer token is reported as both kinds with the same span.
        let text = format!("Authorization: Bearer {JWT_SAMPLE}");
        assert_eq!(found(&text, DetectionKind::BearerToken), [JWT_SAMPLE]);
        assert_eq!(found(&text, DetectionKind::Jwt), [JWT_SAMPLE]);
        assert_eq!(kinds(&text), [DetectionKind::BearerToken, DetectionKind::Jwt]);
    }

    #[test]
    fn bearer_negatives() {
        for text in [
            "Authorization: Bearer short123",
            "the bearer internationalization",
            "Bearer: abcDEF123456ghiJKL789",
            "token_type: Bearer",
        ] {
            assert!(found(text, DetectionKind::BearerToken).is_empty(), "{text}");
        }
    }

    #[test]
    fn assigned_api_keys_need_entropy() {
        assert_eq!(
            found("api_key=Zx8Qp2Lm7Rt4Wv9K", DetectionKind::ApiKey),
            ["Zx8Qp2Lm7Rt4Wv9K"]
        );
        assert_eq!(
            found("APIKEY: 'q8W#e7R$t6Y^u5I&o4'", DetectionKind::ApiKey),
            ["q8W#e7R$t6Y^u5I&o4"]
        );
        assert_eq!(
            found(r#"{"access_token": "ya29.a0AfH6SMBx7k2Lq9Zp"}"#, DetectionKind::ApiKey),
            ["ya29.a0AfH6SMBx7k2Lq9Zp"]
        );
        assert_eq!(
            found(
                "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
                DetectionKind::ApiKey
            ),
            ["wJalrXUtnFEMI/K7MDENG/bPxRfiCY"]
        );
        assert_eq!(
            found("Password = \"Tr0ub4dor&3xQ!mZ7v\"", DetectionKind::ApiKey),
            ["Tr0ub4dor&3xQ!mZ7v"]
        );
        assert_eq!(
            found("secret => Ab1Cd2Ef3Gh4Ij5Kl6", DetectionKind::ApiKey),
            ["Ab1Cd2Ef3Gh4Ij5Kl6"]
        );
    }

    #[test]
    fn assigned_api_key_negatives() {
        for text in [
            "password=aaaaaaaaaaaaaaaaaaaa",
            "password=abababababababababab",
            "token=short1A",
            "api_key=${OPENAI_API_KEY}",
            "password: correct horse battery staple",
            "the secret is out",
            "tokenizer: cl100k_base",
            "SECRET_NAME=prod-db-credentials-v2",
            "token_url: https://auth.example.com/oauth2/token",
            "PASSWORD_FILE=/run/secrets/db_password_2024",
        ] {
            assert!(found(text, DetectionKind::ApiKey).is_empty(), "{text}");
        }
    }

    #[test]
    fn standalone_high_entropy_tokens() {
        let token = "sk-proj-Q3vN8xYp2LkR7tW1mZ9cB4dF6gH0jK5s";
        assert_eq!(found(&format!("use {token} please"), DetectionKind::ApiKey), [token]);
        let b64 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(found(&format!("({b64})"), DetectionKind::ApiKey), [b64]);
    }

    #[test]
    fn standalone_negatives() {
        for text in [
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", // hex digest
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1a",               // low entropy
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop",                       // no digits
            "/home/User1/projects/MyApp2024/src/main/Resources",                // path
            "https://example.com/Reports/Q3/Summary2024/Final_Version_Draft",
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
            "Sk3yQ9wP2mN5bV8cX1zL4kJ7hG6fD0", // 30 chars: too short
            "my-long-kebab-case-identifier-v2-Beta-release",
            "const veryLongVariableNameForTesting2024Purposes = 1;",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf",
            "\"integrity\": \"sha512-Wb5IBpKpqvTbvcwHdpnGJj+BJUvwuDSWZ3MhVoE4t4Ap6KJPXTd4HkwCOVxn2pEHAiqEAdKHSYwbuZW2dxhVg==\"",
        ] {
            assert!(found(text, DetectionKind::ApiKey).is_empty(), "{text}");
        }
    }

    #[test]
    fn url_tracker_agrees_with_looking_back_from_each_offset() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        // What `in_url` did before it read each byte once: look back over the last 2 KiB.
        fn look_back(bytes: &[u8], at: usize) -> bool {
            let window = &bytes[at.saturating_sub(2048)..at];
            let word_start = window.iter().rposition(u8::is_ascii_whitespace).map_or(0, |i| i + 1);
            window[word_start..].windows(3).any(|w| w == b"://")
        }
        let long = "x".repeat(700);
        let pieces = ["://", ":", "/", ":/", "//", " ", "\n", "http", "a", long.as_str()];
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..300 {
            let text: String = (0..rng.random_range(0..40))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            let bytes = text.as_bytes();
            let mut tracker = UrlTracker::default();
            let mut at = 0;
            while at <= bytes.len() {
                assert_eq!(tracker.in_url(bytes, at), look_back(bytes, at), "{text:?} at {at}");
                at += rng.random_range(1..300);
            }
        }
    }

    #[test]
    fn shannon_entropy_helper() {
        assert!((shannon_entropy(b"aaaa") - 0.0).abs() < f64::EPSILON);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }
}
