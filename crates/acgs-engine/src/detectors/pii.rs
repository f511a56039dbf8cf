//! PII detectors: emails, phone numbers, payment cards, US SSNs, IBANs and IP addresses, with their patterns and validators (Luhn, SSA rules, ISO 7064 mod-97, `std::net` parsing).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Detection, DetectionKind, Detectors, Retry, byte_before, find_validated};

// ---------------------------------------------------------------------------------------------
// Patterns. All are constants; `Detectors::new` compiles them once.
// Classes are spelled `[0-9]` (not `\d`, which is Unicode-wide) and word boundaries are the ASCII
// `(?-u:\b)`, which keeps every regex on the fast lazy-DFA path for any input. Matches of a `&str`
// regex are on char boundaries, and validators only ever move a span end to an ASCII byte.
// ---------------------------------------------------------------------------------------------

/// Practical RFC 5322 subset: dot-atoms of common local-part characters, then hostname labels and
/// an alphabetic TLD.
pub(super) const EMAIL: &str =
    r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?-u:\b)";

/// International (`+CC` then 1–6 groups) or North-American (`(415) 555-2671`, `415-555-2671`,
/// `1-800-555-0199`) phone numbers. International digit counts are checked in code.
pub(super) const PHONE: &str = concat!(
    r"\+[1-9][0-9]{0,2}(?:[ .\-]?\([0-9]{1,4}\)|[ .\-]?[0-9]{1,5}){1,6}",
    r"|(?:1[ .\-])?(?:\([2-9][0-9]{2}\)[ ]?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}",
);

/// A run of at least 13 digits with optional single space or dash separators; grouping, length,
/// prefix and Luhn are checked in code.
pub(super) const CARD: &str = r"[0-9](?:[ \-]?[0-9]){12,}";

/// `AAA-GG-SSSS`; SSA rules are checked in code.
pub(super) const SSN: &str = r"[0-9]{3}-[0-9]{2}-[0-9]{4}";

/// Country code, check digits, then the BBAN compact or in space-separated groups of four.
pub(super) const IBAN: &str = r"[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?";

/// Dotted quad candidate; validated with `Ipv4Addr::from_str`.
pub(super) const IPV4: &str = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}";

/// Hex groups and colons (at least two colons), optionally an embedded IPv4 tail; validated with
/// `Ipv6Addr::from_str`.
pub(super) const IPV6: &str = r"(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}";

/// IBAN lengths of common IBAN countries (ISO 13616 registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MT", 31),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
];

impl Detectors {
    pub(super) fn scan_email(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(
            &self.email,
            text,
            Retry::AfterMatch,
            out,
            DetectionKind::Email,
            |s, e| {
                let at = text[s..e].find('@')?;
                let local_ok = at <= 64 && !matches!(byte_before(bytes, s), Some(b'.'));
                (local_ok && e - s <= 254).then_some((s, e))
            },
        );
    }

    pub(super) fn scan_phone(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(&self.phone, text, Retry::NextChar, out, DetectionKind::Phone, |s, e| {
            if !isolated(bytes, s, e, b"-./") {
                return None;
            }
            if bytes.get(s) == Some(&b'+') {
                let digits = bytes[s..e].iter().filter(|b| b.is_ascii_digit()).count();
                if !(8..=15).contains(&digits) {
                    return None;
                }
            }
            Some((s, e))
        });
    }

    pub(super) fn scan_card(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(
            &self.card,
            text,
            Retry::AfterMatch,
            out,
            DetectionKind::PaymentCard,
            |s, e| {
                // The match is a maximal run (leftmost-first, greedy). Reject runs glued to letters,
                // to an international phone prefix, or continuing with `.`/`/` and more digits.
                if !isolated(bytes, s, e, b"./") || byte_before(bytes, s) == Some(b'+') {
                    return None;
                }
                card_in_run(&bytes[s..e]).map(|len| (s, s + len))
            },
        );
    }

    pub(super) fn scan_ssn(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(&self.ssn, text, Retry::NextChar, out, DetectionKind::UsSsn, |s, e| {
            (isolated(bytes, s, e, b"-./") && ssn_valid(&bytes[s..e])).then_some((s, e))
        });
    }

    pub(super) fn scan_iban(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(&self.iban, text, Retry::NextChar, out, DetectionKind::Iban, |s, e| {
            if byte_before(bytes, s).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            iban_in_candidate(&bytes[s..e]).and_then(|len| {
                let end = s + len;
                let glued = bytes.get(end).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
                (!glued).then_some((s, end))
            })
        });
    }

    pub(super) fn scan_ipv4(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(
            &self.ipv4,
            text,
            Retry::NextChar,
            out,
            DetectionKind::IpAddress,
            |s, e| (isolated(bytes, s, e, b".") && text[s..e].parse::<Ipv4Addr>().is_ok()).then_some((s, e)),
        );
    }

    pub(super) fn scan_ipv6(&self, text: &str, out: &mut Vec<Detection>) {
        let bytes = text.as_bytes();
        find_validated(
            &self.ipv6,
            text,
            Retry::NextChar,
            out,
            DetectionKind::IpAddress,
            |s, mut e| {
                if byte_before(bytes, s).is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.')) {
                    return None;
                }
                if bytes.get(e).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                    return None;
                }
                // A trailing single colon is punctuation ("... 2001:db8::1: unreachable").
                if bytes[s..e].ends_with(b":") && !bytes[s..e].ends_with(b"::") {
                    e -= 1;
                }
                let candidate = &text[s..e];
                let colons = candidate.bytes().filter(|b| *b == b':').count();
                let first_group = candidate.find(':').unwrap_or(0);
                // Filter code-like forms such as `a::b` or a slice `[1::2]`.
                let plausible = candidate.bytes().any(|b| b.is_ascii_digit())
                    && (colons >= 3 || candidate.starts_with("::") || first_group == 4);
                (plausible && candidate.parse::<Ipv6Addr>().is_ok()).then_some((s, e))
            },
        );
    }
}

/// Whether `bytes[start..end]` is not glued to letters/digits and does not continue a longer
/// number (a digit then one of `continuers` before it, or one of `continuers` then a digit after).
fn isolated(bytes: &[u8], start: usize, end: usize, continuers: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let before = byte_before(bytes, start);
    let after = bytes.get(end).copied();
    if before.is_some_and(word) || after.is_some_and(word) {
        return false;
    }
    let continues_before = before.is_some_and(|b| continuers.contains(&b))
        && start
            .checked_sub(2)
            .and_then(|i| bytes.get(i))
            .is_some_and(u8::is_ascii_digit);
    let continues_after =
        after.is_some_and(|b| continuers.contains(&b)) && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
    !continues_before && !continues_after
}

/// The byte length of the card number at the start of a digit run (digits with single space or
/// dash separators), if any: the whole run, or for a separated run its longest prefix of whole
/// groups, that has 13–19 digits, starts with 2–6 (Visa, Mastercard, Amex, Discover, JCB, Diners,
/// UnionPay) and passes Luhn. A separated number uses one separator, a first group of four digits
/// and groups of three to six digits.
fn card_in_run(run: &[u8]) -> Option<usize> {
    const MAX: usize = 19;
    let mut digits = [0u8; MAX];
    let mut count = 0;
    let mut separator = None;
    let mut group_len = 0;
    // (digit count, byte length) at each group end, for whole-group prefixes.
    let mut ends: [(usize, usize); MAX] = [(0, 0); MAX];
    let mut n_ends = 0;
    let mut full = true;
    for (i, &b) in run.iter().enumerate() {
        if b.is_ascii_digit() {
            if count == MAX {
                full = false;
                break;
            }
            digits[count] = b - b'0';
            count += 1;
            group_len += 1;
            continue;
        }
        // Separator: close the group.
        let first_group = n_ends == 0;
        let group_ok = if first_group {
            group_len == 4
        } else {
            (3..=6).contains(&group_len)
        };
        if !group_ok || separator.is_some_and(|s| s != b) {
            full = false;
            break;
        }
        separator = Some(b);
        ends[n_ends] = (count, i);
        n_ends += 1;
        group_len = 0;
    }
    if full {
        let last_ok = separator.is_none() || (3..=6).contains(&group_len);
        if last_ok && card_number_valid(&digits[..count]) {
            return Some(run.len());
        }
    }
    ends[..n_ends]
        .iter()
        .rev()
        .find(|(n, _)| card_number_valid(&digits[..*n]))
        .map(|&(_, len)| len)
}

fn card_number_valid(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len()) && matches!(digits.first(), Some(2..=6)) && luhn_valid(digits)
}

/// Luhn (mod 10) check over digit values.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// SSA rules for `AAA-GG-SSSS`: area not 000, 666 or 900–999; group not 00; serial not 0000.
fn ssn_valid(ssn: &[u8]) -> bool {
    let number = |range: std::ops::Range<usize>| {
        ssn.get(range)
            .map(|d| d.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b.wrapping_sub(b'0'))))
    };
    match (number(0..3), number(4..6), number(7..11)) {
        (Some(area), Some(group), Some(serial)) => area != 0 && area != 666 && area < 900 && group != 0 && serial != 0,
        _ => false,
    }
}

/// The byte length of the IBAN at the start of a candidate (country, check digits, BBAN with
/// optional single spaces), if any. For a known country exactly its length in characters is taken;
/// for an unknown one the whole candidate, which must be 15–34 characters. Check digits 00, 01 and
/// 99 are never issued; the ISO 7064 mod-97 remainder must be 1.
fn iban_in_candidate(candidate: &[u8]) -> Option<usize> {
    let country = candidate.get(..2)?;
    let known = IBAN_LENGTHS
        .iter()
        .find(|(code, _)| code.as_slice() == country)
        .map(|(_, len)| *len);
    let total = candidate.iter().filter(|b| **b != b' ').count();
    let (wanted, byte_len) = match known {
        Some(len) => {
            // Byte length covering `len` alphanumerics.
            let mut seen = 0;
            let byte_len = candidate.iter().position(|b| {
                if *b != b' ' {
                    seen += 1;
                }
                seen == len
            })? + 1;
            (len, byte_len)
        }
        None if (15..=34).contains(&total) => (total, candidate.len()),
        None => return None,
    };
    let chars: Vec<u8> = candidate[..byte_len].iter().copied().filter(|b| *b != b' ').collect();
    if chars.len() != wanted || matches!(chars.get(2..4), Some(b"00" | b"01" | b"99")) {
        return None;
    }
    let (head, bban) = chars.split_at(4);
    let mut rem: u32 = 0;
    for &c in bban.iter().chain(head) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return None,
        };
    }
    (rem == 1).then_some(byte_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::tests::found;

    #[test]
    fn email_found_with_exact_span() {
        assert_eq!(
            found("contact: jane.doe+news@mail.example.co.uk.", DetectionKind::Email),
            ["jane.doe+news@mail.example.co.uk"]
        );
        assert_eq!(
            found("user=bob_smith@example.org;", DetectionKind::Email),
            ["bob_smith@example.org"]
        );
        assert_eq!(found("<a@b.io>", DetectionKind::Email), ["a@b.io"]);
    }

    #[test]
    fn email_negatives() {
        for text in [
            "@handle",
            "user@localhost",
            "a @ b.com",
            "foo@bar",
            "name@domain.c",
            "x@-y.com",
        ] {
            assert!(found(text, DetectionKind::Email).is_empty(), "{text}");
        }
    }

    #[test]
    fn phone_formats_found() {
        assert_eq!(
            found("Call +1 (415) 555-2671 today", DetectionKind::Phone),
            ["+1 (415) 555-2671"]
        );
        assert_eq!(
            found("London: +44 20 7946 0958.", DetectionKind::Phone),
            ["+44 20 7946 0958"]
        );
        assert_eq!(found("cell 415-555-2671", DetectionKind::Phone), ["415-555-2671"]);
        assert_eq!(found("(415) 555-2671", DetectionKind::Phone), ["(415) 555-2671"]);
        assert_eq!(
            found("toll free 1-800-555-0199", DetectionKind::Phone),
            ["1-800-555-0199"]
        );
        assert_eq!(found("e164 +14155552671", DetectionKind::Phone), ["+14155552671"]);
        assert_eq!(found("tel 415.555.2671", DetectionKind::Phone), ["415.555.2671"]);
    }

    #[test]
    fn phone_negatives() {
        for text in [
            "date 2026-11-22 and 2026-11-22T10:30:45Z",
            "card 4111 1111 1111 1111",
            "id 12345678901234",
            "ratio 3+4 = 7, +15 points",
            "version 415-555-2671-9",
            "ip 192.168.100.200",
            "ssn 123-45-6789",
            "short +1 234",
            "code 123-456-7890",
        ] {
            assert!(found(text, DetectionKind::Phone).is_empty(), "{text}");
        }
    }

    #[test]
    fn payment_card_requires_luhn() {
        assert_eq!(
            found("card 4111 1111 1111 1111 exp 12/27", DetectionKind::PaymentCard),
            ["4111 1111 1111 1111"]
        );
        assert!(found("card 4111 1111 1111 1112", DetectionKind::PaymentCard).is_empty());
        assert_eq!(
            found("mc:5555555555554444", DetectionKind::PaymentCard),
            ["5555555555554444"]
        );
        assert_eq!(
            found("amex 3782-822463-10005.", DetectionKind::PaymentCard),
            ["3782-822463-10005"]
        );
        assert_eq!(
            found("4111-1111-1111-1111", DetectionKind::PaymentCard),
            ["4111-1111-1111-1111"]
        );
        // A trailing CVV group is not part of the number.
        assert_eq!(
            found("4111 1111 1111 1111 123", DetectionKind::PaymentCard),
            ["4111 1111 1111 1111"]
        );
    }

    #[test]
    fn payment_card_negatives() {
        for text in [
            "4111 1111 1111 1112",
            "41111111111111111111111", // too long a run
            "4111x1111111111111",
            "4111 1111-1111 1111", // mixed separators
            "1 2 3 4 5 6 7 8 9 10 11 12 13",
            "0000000000000000",
            "+49 4111 1111 1111 1111",
            "order 12345678903", // 11 digits
        ] {
            assert!(found(text, DetectionKind::PaymentCard).is_empty(), "{text}");
        }
    }

    #[test]
    fn ssn_rules() {
        assert_eq!(found("SSN: 123-45-6789.", DetectionKind::UsSsn), ["123-45-6789"]);
        for text in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
            "1123-45-6789",
            "123-45-67890",
            "123-45-6789-1",
        ] {
            assert!(found(text, DetectionKind::UsSsn).is_empty(), "{text}");
        }
    }

    #[test]
    fn iban_mod97_and_length() {
        assert_eq!(
            found("IBAN: DE89 3704 0044 0532 0130 00, thanks", DetectionKind::Iban),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            found("pay GB82WEST12345698765432 today", DetectionKind::Iban),
            ["GB82WEST12345698765432"]
        );
        assert_eq!(found("NL91ABNA0417164300", DetectionKind::Iban), ["NL91ABNA0417164300"]);
        assert_eq!(
            found("BE68539007547034 ABCD", DetectionKind::Iban),
            ["BE68539007547034"]
        );
        assert_eq!(
            found("FR1420041010050500013M02606", DetectionKind::Iban),
            ["FR1420041010050500013M02606"]
        );
        assert_eq!(found("NO9386011117947", DetectionKind::Iban), ["NO9386011117947"]);
    }

    #[test]
    fn iban_negatives() {
        for text in [
            "DE88 3704 0044 0532 0130 00", // wrong check digits
            "GB82WEST12345698765433",      // wrong BBAN digit
            "DE89 3704 0044 0532 0130",    // too short for DE
            "DE89370400440532013000X",     // glued to more text
            "de89 3704 0044 0532 0130 00", // lowercase
            "XDE89370400440532013000",
        ] {
            assert!(found(text, DetectionKind::Iban).is_empty(), "{text}");
        }
    }

    #[test]
    fn ipv4_and_ipv6() {
        assert_eq!(
            found("host 192.168.1.20 is up", DetectionKind::IpAddress),
            ["192.168.1.20"]
        );
        assert_eq!(
            found("net 10.0.0.0/8, gw 10.0.0.1:8080.", DetectionKind::IpAddress),
            ["10.0.0.0", "10.0.0.1"]
        );
        assert_eq!(found("v6 2001:db8::1 ok", DetectionKind::IpAddress), ["2001:db8::1"]);
        assert_eq!(
            found("loopback ::1, link fe80::1", DetectionKind::IpAddress),
            ["::1", "fe80::1"]
        );
        assert_eq!(
            found(
                "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:443",
                DetectionKind::IpAddress
            ),
            ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]
        );
        assert_eq!(
            found("down: 2001:db8::1: unreachable", DetectionKind::IpAddress),
            ["2001:db8::1"]
        );
        // An IPv4-mapped address is one finding (the embedded IPv4 is merged into it).
        assert_eq!(
            found("mapped ::ffff:192.168.1.1 here", DetectionKind::IpAddress),
            ["::ffff:192.168.1.1"]
        );
    }

    #[test]
    fn ip_negatives() {
        for text in [
            "999.1.1.1",
            "1.2.3",
            "version 1.2.3.4.5",
            "oid 1.3.6.1.4.1.311",
            "256.256.256.256",
            "at 10:30:45",
            "a::b and Foo::Bar",
            "u8::MAX",
            "00:1A:2B:3C:4D:5E",
        ] {
            assert!(found(text, DetectionKind::IpAddress).is_empty(), "{text}");
        }
    }

    #[test]
    fn spans_are_exact_after_multibyte_text() {
        let text = "Grüße, 日本語 — écrivez à zoe@example.fr ou appelez +33 1 23 45 67 89 😀 ssn 123-45-6789";
        assert_eq!(found(text, DetectionKind::Email), ["zoe@example.fr"]);
        assert_eq!(found(text, DetectionKind::Phone), ["+33 1 23 45 67 89"]);
        assert_eq!(found(text, DetectionKind::UsSsn), ["123-45-6789"]);
        assert_eq!(
            found("€€€ 4111111111111111 €", DetectionKind::PaymentCard),
            ["4111111111111111"]
        );
        assert_eq!(
            found("ключ: AKIAIOSFODNN7EXAMPLE", DetectionKind::CloudAccessKey),
            ["AKIAIOSFODNN7EXAMPLE"]
        );
        // Non-ASCII local parts are not matched (documented limit).
        assert!(found("zoë@example.fr", DetectionKind::Email).is_empty());
    }

    #[test]
    fn luhn_and_mod97_helpers() {
        assert!(luhn_valid(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn_valid(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert_eq!(iban_in_candidate(b"GB82WEST12345698765432"), Some(22));
        assert_eq!(iban_in_candidate(b"GB82WEST12345698765431"), None);
    }
}
