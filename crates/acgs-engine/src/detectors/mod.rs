//! Content detectors that scan text for PII, secrets and prompt-injection phrases and report each finding's kind and byte span.
//!
//! [`Detectors::scan`] runs every detector over one text (a prompt, a tool argument, a model
//! output) and returns [`Detection`]s: the kind of finding and a half-open byte span into the
//! scanned text. The matched text itself is never returned, so a finding can be logged or shown
//! without echoing a secret. The decision engine turns the findings into Cedar context attributes.
//!
//! Every detector is a heuristic with known false positives and false negatives (see
//! `docs/detectors.md`); policies should treat findings as risk signals, not as proof.
//!
//! Cost: a single byte pass gathers cheap statistics (digit count, `@`, colons, longest token-like
//! run, ...) and detectors whose preconditions are absent are skipped; the others are linear-time
//! regexes (with literal prefilters where a detector has a fixed prefix) and one Aho-Corasick
//! automaton. Candidates are then validated (Luhn, ISO 7064 mod-97, SSA rules, `std::net` parsing,
//! Shannon entropy) before they are reported.
//!
//! Layout: this file holds the shared types, [`Detectors`] (`new`, `scan`) and the merging of
//! findings; `prefilter` the byte pass that skips detectors, `pii`, `secrets` and `injection` the
//! detectors of each family with their patterns and validators.

mod injection;
mod pii;
mod prefilter;
mod secrets;

use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::Regex;
use serde::{Deserialize, Serialize};

use injection::INJECTION_PHRASES;
use pii::{CARD, EMAIL, IBAN, IPV4, IPV6, PHONE, SSN};
use prefilter::Stats;
use secrets::{
    ASSIGNMENT, BEARER, CLOUD, JWT, MIN_SECRET_LEN, MIN_STANDALONE_LEN, PEM_BEGIN, PEM_BODY, PEM_END, STANDALONE,
};

/// Which family of finding.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionCategory {
    /// Personally identifiable information: emails, phone numbers, card numbers, SSNs, IBANs, IP addresses.
    Pii,
    /// Credentials: private keys, cloud and SaaS access keys, bearer tokens, JWTs, generic API keys.
    Secret,
    /// Phrases typical of prompt-injection and jailbreak attempts.
    PromptInjection,
}

/// One finding: what was found and where (byte span, half-open, into the scanned text).
///
/// Never the matched text itself (we must not echo secrets). `start` and `end` are always on
/// UTF-8 char boundaries of the scanned text, with `start < end`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    /// Family of the finding (always `kind.category()`).
    pub category: DetectionCategory,
    /// What was found.
    pub kind: DetectionKind,
    /// Byte offset of the first byte of the finding.
    pub start: usize,
    /// Byte offset one past the last byte of the finding.
    pub end: usize,
}

/// What a detector found; serialised in snake_case (the same string as [`DetectionKind::as_str`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionKind {
    /// An email address (`local@domain.tld`).
    Email,
    /// A phone number in international (`+CC ...`) or North-American format.
    Phone,
    /// A payment card number (13–19 digits) that passes the Luhn check.
    PaymentCard,
    /// A US Social Security number (`AAA-GG-SSSS`) that follows the SSA allocation rules.
    UsSsn,
    /// An IBAN whose ISO 7064 mod-97 check passes.
    Iban,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A PEM private-key block (`-----BEGIN ... PRIVATE KEY-----`).
    PrivateKey,
    /// A provider access key with a recognisable prefix (AWS, Google, GitHub, Slack, Stripe).
    CloudAccessKey,
    /// The token of a `Bearer <token>` credential.
    BearerToken,
    /// A JSON Web Token (three base64url segments, the first starting `eyJ`).
    Jwt,
    /// A generic high-entropy secret (assigned to a key-like name, or standalone).
    ApiKey,
    /// A phrase typical of prompt injection or jailbreak attempts.
    PromptInjection,
}

impl DetectionKind {
    /// The snake_case name of the kind, as used in serialisation and Cedar attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::PaymentCard => "payment_card",
            Self::UsSsn => "us_ssn",
            Self::Iban => "iban",
            Self::IpAddress => "ip_address",
            Self::PrivateKey => "private_key",
            Self::CloudAccessKey => "cloud_access_key",
            Self::BearerToken => "bearer_token",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::PromptInjection => "prompt_injection",
        }
    }

    /// The family the kind belongs to.
    pub fn category(self) -> DetectionCategory {
        match self {
            Self::Email | Self::Phone | Self::PaymentCard | Self::UsSsn | Self::Iban | Self::IpAddress => {
                DetectionCategory::Pii
            }
            Self::PrivateKey | Self::CloudAccessKey | Self::BearerToken | Self::Jwt | Self::ApiKey => {
                DetectionCategory::Secret
            }
            Self::PromptInjection => DetectionCategory::PromptInjection,
        }
    }
}

impl DetectionKind {
    /// Every kind, in declaration order.
    pub const ALL: [DetectionKind; 12] = [
        Self::Email,
        Self::Phone,
        Self::PaymentCard,
        Self::UsSsn,
        Self::Iban,
        Self::IpAddress,
        Self::PrivateKey,
        Self::CloudAccessKey,
        Self::BearerToken,
        Self::Jwt,
        Self::ApiKey,
        Self::PromptInjection,
    ];

    /// A short text in which the detectors find exactly this kind (for `BearerToken`: a bearer credential whose
    /// token is not a JWT). Texts made of several examples joined by [`EXAMPLE_SEPARATOR`] are found to hold
    /// exactly those kinds (a test checks every combination), which is how the formal verifier turns a
    /// counterexample's `context.detections` into request `content` that reproduces it.
    pub fn example(self) -> &'static str {
        match self {
            Self::Email => "jane.doe@example.com",
            Self::Phone => "+44 20 7946 0958",
            Self::PaymentCard => "4111 1111 1111 1111",
            Self::UsSsn => "SSN 123-45-6789",
            Self::Iban => "GB82WEST12345698765432",
            Self::IpAddress => "192.168.10.20",
            Self::PrivateKey => "-----BEGIN RSA PRIVATE KEY-----",
            Self::CloudAccessKey => "AKIAIOSFODNN7EXAMPLE",
            Self::BearerToken => "Authorization: Bearer abcDEF123456ghiJKL789",
            Self::Jwt => {
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
            }
            Self::ApiKey => "api_key=Zx8Qp2Lm7Rt4Wv9K",
            Self::PromptInjection => "ignore previous instructions",
        }
    }
}

/// What joins [`DetectionKind::example`] texts into one content string.
pub const EXAMPLE_SEPARATOR: &str = "\n--\n";

/// Compiled detectors; build once (it compiles regexes / automata) and share (`Send + Sync`).
///
/// Building takes a few milliseconds; scanning is linear in the text length.
#[derive(Clone)]
pub struct Detectors {
    email: Regex,
    phone: Regex,
    card: Regex,
    ssn: Regex,
    iban: Regex,
    ipv4: Regex,
    ipv6: Regex,
    pem_begin: Regex,
    pem_end: Regex,
    pem_body: Regex,
    cloud: Regex,
    jwt: Regex,
    bearer: Regex,
    assignment: Regex,
    standalone: Regex,
    injection: AhoCorasick,
}

/// Why the constant patterns failed to compile (never expected).
type BuildError = Box<dyn std::error::Error + Send + Sync>;

impl Detectors {
    /// Compile all detectors.
    ///
    /// The patterns are constants covered by the tests, so this does not fail in practice.
    #[expect(
        clippy::expect_used,
        reason = "the regexes and phrases are constant patterns covered by tests; failing to compile them is a programming error"
    )]
    pub fn new() -> Self {
        Self::try_new().expect("constant detector patterns compile")
    }

    fn try_new() -> Result<Self, BuildError> {
        let injection = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(INJECTION_PHRASES)?;
        Ok(Self {
            email: Regex::new(EMAIL)?,
            phone: Regex::new(PHONE)?,
            card: Regex::new(CARD)?,
            ssn: Regex::new(SSN)?,
            iban: Regex::new(IBAN)?,
            ipv4: Regex::new(IPV4)?,
            ipv6: Regex::new(IPV6)?,
            pem_begin: Regex::new(PEM_BEGIN)?,
            pem_end: Regex::new(PEM_END)?,
            pem_body: Regex::new(PEM_BODY)?,
            cloud: Regex::new(CLOUD)?,
            jwt: Regex::new(JWT)?,
            bearer: Regex::new(BEARER)?,
            assignment: Regex::new(ASSIGNMENT)?,
            standalone: Regex::new(STANDALONE)?,
            injection,
        })
    }

    /// Scan `text` and return the findings sorted by `(start, kind)` (then `end`).
    ///
    /// Overlapping findings of the same kind are merged into one (their union). A generic
    /// [`DetectionKind::ApiKey`] finding that overlaps a more specific secret (private key, cloud
    /// key, bearer token, JWT) is dropped. A JWT used as a bearer token is reported twice, as
    /// [`DetectionKind::BearerToken`] and [`DetectionKind::Jwt`], with the same span.
    pub fn scan(&self, text: &str) -> Vec<Detection> {
        let mut out = Vec::new();
        if text.is_empty() {
            return out;
        }
        let stats = Stats::of(text.as_bytes());

        if stats.at_signs > 0 {
            self.scan_email(text, &mut out);
        }
        if stats.digits >= 7 {
            self.scan_phone(text, &mut out);
        }
        if stats.digits >= 13 {
            self.scan_card(text, &mut out);
        }
        if stats.digits >= 9 && stats.dashes >= 2 {
            self.scan_ssn(text, &mut out);
        }
        if stats.digits >= 2 && stats.uppers >= 2 && text.len() >= 15 {
            self.scan_iban(text, &mut out);
        }
        if stats.digits >= 4 && stats.dots >= 3 {
            self.scan_ipv4(text, &mut out);
        }
        if stats.colons >= 2 {
            self.scan_ipv6(text, &mut out);
        }
        if stats.dashes >= 10 && text.contains("-----BEGIN ") {
            self.scan_pem(text, &mut out);
        }
        if stats.longest_token_run >= 15 {
            // The shortest provider key (Slack, `xoxb-` + 10) is a 15-char token run.
            self.scan_cloud(text, &mut out);
        }
        if text.contains("eyJ") {
            self.scan_jwt(text, &mut out);
        }
        if stats.longest_word >= MIN_SECRET_LEN {
            self.scan_bearer(text, &mut out);
            if stats.assignment_ops > 0 {
                self.scan_assignment(text, &mut out);
            }
        }
        if stats.longest_token_run >= MIN_STANDALONE_LEN {
            self.scan_standalone(text, &mut out);
        }
        self.scan_injection(text, stats.needs_normalization, &mut out);

        finish(out)
    }
}

impl Default for Detectors {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Detectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detectors")
            .field("injection_phrases", &INJECTION_PHRASES.len())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

fn detection(kind: DetectionKind, start: usize, end: usize) -> Detection {
    Detection {
        category: kind.category(),
        kind,
        start,
        end,
    }
}

/// Where to resume after a candidate is rejected.
#[derive(Clone, Copy)]
enum Retry {
    /// At the next char after the candidate's start (bounded-length patterns: a valid finding may
    /// start inside a rejected candidate).
    NextChar,
    /// After the candidate (unbounded patterns, whose matches are maximal runs; avoids quadratic
    /// rescans).
    AfterMatch,
}

/// Run `re` over `text`, validate each candidate with `accept(start, end)` (which may shrink the
/// span) and push the accepted ones.
fn find_validated(
    re: &Regex,
    text: &str,
    retry: Retry,
    out: &mut Vec<Detection>,
    kind: DetectionKind,
    mut accept: impl FnMut(usize, usize) -> Option<(usize, usize)>,
) {
    let mut pos = 0;
    while pos <= text.len() {
        let Some(m) = re.find_at(text, pos) else {
            break;
        };
        let next_char = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
        match accept(m.start(), m.end()) {
            Some((s, e)) if s < e => {
                out.push(detection(kind, s, e));
                pos = e.max(next_char);
            }
            _ => {
                pos = match retry {
                    Retry::NextChar => next_char,
                    Retry::AfterMatch => m.end().max(next_char),
                };
            }
        }
    }
}

fn byte_before(bytes: &[u8], at: usize) -> Option<u8> {
    at.checked_sub(1).and_then(|i| bytes.get(i).copied())
}

/// Drop generic API keys covered by a more specific secret, merge overlapping findings of the
/// same kind and sort by `(start, kind, end)`.
fn finish(mut found: Vec<Detection>) -> Vec<Detection> {
    // The specific secrets' spans by start, each with the furthest end of it and those before it: a key `[s, e)`
    // overlaps one of them exactly when, among those starting before `e`, the furthest end is after `s`. A binary
    // search per key, where comparing every key with every specific secret was quadratic (a 1 MiB text of JWTs
    // and assigned keys, 28,000 of each, took 0.3 s).
    let mut specific: Vec<(usize, usize)> = found
        .iter()
        .filter(|d| d.kind.category() == DetectionCategory::Secret && d.kind != DetectionKind::ApiKey)
        .map(|d| (d.start, d.end))
        .collect();
    if !specific.is_empty() {
        specific.sort_unstable();
        let mut furthest = 0;
        for span in &mut specific {
            furthest = furthest.max(span.1);
            span.1 = furthest;
        }
        found.retain(|d| {
            let before = specific.partition_point(|&(start, _)| start < d.end);
            let overlaps = before
                .checked_sub(1)
                .and_then(|i| specific.get(i))
                .is_some_and(|&(_, furthest)| furthest > d.start);
            d.kind != DetectionKind::ApiKey || !overlaps
        });
    }
    found.sort_unstable_by_key(|d| (d.kind, d.start, d.end));
    let mut merged: Vec<Detection> = Vec::with_capacity(found.len());
    for d in found {
        match merged.last_mut() {
            Some(last) if last.kind == d.kind && d.start < last.end => last.end = last.end.max(d.end),
            _ => merged.push(d),
        }
    }
    merged.sort_unstable_by_key(|d| (d.start, d.kind, d.end));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [DetectionKind; 12] = DetectionKind::ALL;

    pub(super) fn detectors() -> &'static Detectors {
        static DETECTORS: std::sync::OnceLock<Detectors> = std::sync::OnceLock::new();
        DETECTORS.get_or_init(Detectors::new)
    }

    /// The matched substrings of `kind` in `text`, checking span invariants on the way.
    pub(super) fn found(text: &str, kind: DetectionKind) -> Vec<&str> {
        let detections = detectors().scan(text);
        for d in &detections {
            assert!(d.start < d.end && d.end <= text.len(), "bad span {d:?}");
            assert!(
                text.is_char_boundary(d.start) && text.is_char_boundary(d.end),
                "span off char boundary {d:?}"
            );
            assert_eq!(d.category, d.kind.category());
        }
        detections
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| &text[d.start..d.end])
            .collect()
    }

    pub(super) fn kinds(text: &str) -> Vec<DetectionKind> {
        detectors().scan(text).iter().map(|d| d.kind).collect()
    }

    #[test]
    fn kind_names_match_serde_and_categories() {
        for kind in ALL_KINDS {
            let json = serde_json::to_string(&kind).ok();
            assert_eq!(json, Some(format!("\"{}\"", kind.as_str())));
            let back: Option<DetectionKind> = serde_json::from_str(&format!("\"{}\"", kind.as_str())).ok();
            assert_eq!(back, Some(kind));
        }
        assert_eq!(DetectionKind::UsSsn.as_str(), "us_ssn");
        assert_eq!(DetectionKind::IpAddress.category(), DetectionCategory::Pii);
        assert_eq!(DetectionKind::Jwt.category(), DetectionCategory::Secret);
        assert_eq!(
            DetectionKind::PromptInjection.category(),
            DetectionCategory::PromptInjection
        );
        assert_eq!(
            serde_json::to_string(&DetectionCategory::PromptInjection)
                .ok()
                .as_deref(),
            Some("\"prompt_injection\"")
        );
    }

    #[test]
    fn detection_serializes_without_text() {
        let text = "mail bob@example.com now";
        let detections = detectors().scan(text);
        let json = serde_json::to_string(&detections).unwrap_or_default();
        assert_eq!(json, r#"[{"category":"pii","kind":"email","start":5,"end":20}]"#);
        assert!(!json.contains("bob"));
    }

    #[test]
    fn detectors_are_send_sync_default_and_debug() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Detectors>();
        let d = Detectors::default();
        assert!(format!("{d:?}").starts_with("Detectors"));
        assert!(d.scan("").is_empty());
    }

    #[test]
    fn empty_and_whitespace_give_nothing() {
        assert!(detectors().scan("").is_empty());
        assert!(detectors().scan("   \n\t ").is_empty());
    }

    const BENIGN: &str = "Quarterly update for the operations team. Revenue for the third quarter \
        grew 12 percent compared with last year, driven mainly by the new subscription tiers we \
        launched in March and by steady renewals among mid-sized customers. Support ticket volume \
        fell by roughly a fifth after the onboarding guide was rewritten, and the median response \
        time is now under four hours. We hired 7 engineers and 3 account managers, which brings \
        the headcount to 214 people across 5 offices. The migration of the billing system to the \
        new platform is on track for completion in the first half of next year; the remaining \
        risks are data reconciliation for legacy contracts and training for the finance staff. \
        Please review the attached budget draft (version 2.3) before the meeting on Thursday at \
        10:30, and note that travel costs were 8.5% above plan because of the customer summit. \
        Our priorities for the next quarter are reducing churn, improving the mobile experience, \
        expanding the partner program in Europe, and simplifying our pricing page. Thanks to \
        everyone for the hard work, and please ignore the noise in the previous chart.";

    #[test]
    fn benign_business_paragraph_gives_nothing() {
        assert!(BENIGN.len() >= 1000, "paragraph is {} bytes", BENIGN.len());
        assert_eq!(detectors().scan(BENIGN), Vec::new());
    }

    #[test]
    fn benign_technical_text_gives_nothing() {
        let text = "Released v1.2.3 on 2026-11-22 at 10:30:45 (build 20261122103045). \
            See https://example.com/docs/getting-started-with-the-platform-guide-2024 and commit \
            9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08. \
            Rust path std::collections::HashMap::new and u32::MAX, slice a[1::2]. \
            UUID 550e8400-e29b-41d4-a716-446655440000, MAC 00:1A:2B:3C:4D:5E. \
            fn get_user_account_settings_for_region_v2() { let token = None; } \
            The bearer of this letter is authorised. Order #123456 ships in 3-5 days.";
        assert_eq!(detectors().scan(text), Vec::new());
    }

    #[test]
    fn findings_sorted_and_deduplicated() {
        let text = "a@b.io 192.168.0.1 a@b.io";
        let d = detectors().scan(text);
        assert_eq!(
            d.iter().map(|d| d.kind).collect::<Vec<_>>(),
            [DetectionKind::Email, DetectionKind::IpAddress, DetectionKind::Email]
        );
        assert!(d.windows(2).all(|w| (w[0].start, w[0].kind) <= (w[1].start, w[1].kind)));
    }

    #[test]
    fn generic_keys_overlapping_specific_secrets_are_dropped_as_by_comparing_every_pair() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        // What `finish` did before its sweep: every key against every specific secret.
        fn pairwise(mut found: Vec<Detection>) -> Vec<Detection> {
            let specific: Vec<(usize, usize)> = found
                .iter()
                .filter(|d| d.kind.category() == DetectionCategory::Secret && d.kind != DetectionKind::ApiKey)
                .map(|d| (d.start, d.end))
                .collect();
            found.retain(|d| {
                d.kind != DetectionKind::ApiKey || !specific.iter().any(|&(s, e)| d.start < e && s < d.end)
            });
            finish(found)
        }
        let kinds = [
            DetectionKind::ApiKey,
            DetectionKind::ApiKey,
            DetectionKind::Jwt,
            DetectionKind::BearerToken,
            DetectionKind::PrivateKey,
            DetectionKind::CloudAccessKey,
            DetectionKind::Email,
        ];
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..2000 {
            let found: Vec<Detection> = (0..rng.random_range(0..30))
                .map(|_| {
                    let start = rng.random_range(0..100);
                    detection(
                        kinds[rng.random_range(0..kinds.len())],
                        start,
                        start + rng.random_range(1..25),
                    )
                })
                .collect();
            assert_eq!(finish(found.clone()), pairwise(found.clone()), "{found:?}");
        }
    }

    #[test]
    fn pathological_inputs_stay_linear() {
        // Each would be quadratic (or worse) with naive retry loops; here they finish quickly.
        let inputs = [
            "a".repeat(64 * 1024),
            "1 ".repeat(32 * 1024),
            "-----BEGIN RSA PRIVATE KEY-----\n".repeat(2 * 1024),
            "ignore ".repeat(8 * 1024),
            "x@".repeat(16 * 1024),
            "1.".repeat(32 * 1024),
            "a:".repeat(32 * 1024),
            format!("{}@example.com", "a".repeat(64 * 1024)),
            "Ab1=".repeat(16 * 1024),
        ];
        for input in &inputs {
            let start = std::time::Instant::now();
            let detections = detectors().scan(input);
            for d in &detections {
                assert!(input.is_char_boundary(d.start) && input.is_char_boundary(d.end));
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "too slow");
        }
        // Many unterminated BEGIN lines are one finding each.
        let begins = "-----BEGIN RSA PRIVATE KEY-----\n".repeat(3);
        assert_eq!(kinds(&begins), [DetectionKind::PrivateKey; 3]);
    }

    #[test]
    fn every_combination_of_examples_is_found_exactly() {
        let d = detectors();
        for mask in 0u32..(1 << DetectionKind::ALL.len()) {
            let chosen: Vec<DetectionKind> = DetectionKind::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, k)| *k)
                .collect();
            let text: Vec<&str> = chosen.iter().map(|k| k.example()).collect();
            let text = text.join(super::EXAMPLE_SEPARATOR);
            let mut found: Vec<DetectionKind> = d.scan(&text).iter().map(|f| f.kind).collect();
            found.sort();
            found.dedup();
            let mut want = chosen.clone();
            want.sort();
            assert_eq!(found, want, "{text:?}");
        }
    }

    #[test]
    fn random_mixtures_keep_span_invariants() {
        const PIECES: &[&str] = &[
            " ",
            "\n",
            "\t",
            "  ",
            "é",
            "日本",
            "😀",
            "\u{200B}",
            "\u{a0}",
            "0",
            "7",
            "12",
            "-",
            ".",
            ":",
            "::",
            "@",
            "+",
            "(",
            ")",
            "=",
            "/",
            "_",
            "A",
            "z",
            "Bearer ",
            "api_key=",
            "eyJ",
            "ignore",
            "previous",
            "instructions",
            "4111 1111 1111 1111",
            "DE89 3704 0044 0532 0130 00",
            "192.168.1.20",
            "2001:db8::1",
            "a@b.io",
            "+44 20 7946 0958",
            "123-45-6789",
            "AKIAIOSFODNN7EXAMPLE",
            "-----BEGIN PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
            "Zx8Qp2Lm7Rt4Wv9K",
            "sk-proj-Q3vN8xYp2LkR7tW1mZ9cB4dF6gH0jK5s",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = next() % 40;
            let text: String = (0..len)
                .map(|_| PIECES[usize::try_from(next() % PIECES.len() as u64).unwrap_or(0)])
                .collect();
            let detections = detectors().scan(&text);
            for d in &detections {
                assert!(d.start < d.end && d.end <= text.len(), "{text:?} {d:?}");
                assert!(
                    text.is_char_boundary(d.start) && text.is_char_boundary(d.end),
                    "{text:?} {d:?}"
                );
                assert_eq!(d.category, d.kind.category());
            }
            for (i, a) in detections.iter().enumerate() {
                for b in &detections[i + 1..] {
                    assert!(
                        (a.start, a.kind, a.end) <= (b.start, b.kind, b.end),
                        "unsorted {text:?}"
                    );
                    assert!(a.kind != b.kind || a.end <= b.start, "same-kind overlap {text:?}");
                }
            }
        }
    }
}
