//! Problem documents for the requests hyper refuses before they reach the router: a malformed request line or
//! header, a repeated, negative or otherwise invalid `Content-Length`, too many or too large headers. hyper
//! answers those itself (400, 431, 414, 505) with an empty body; the connection's socket swaps that answer for
//! the same status with an `application/problem+json` body, like every other error of the API.
//!
//! hyper's answer is recognised by what it lacks: every response the router produces carries
//! `X-Constitutional-Hash`, and hyper's own error responses do not.

use serde_json::json;

use crate::telemetry::HASH_HEADER;

/// If `written` begins with a whole response head that hyper produced for a request it could not parse, the
/// response to send instead: the same status with a problem document, and `Connection: close`.
pub(crate) fn replacement_for(written: &[u8]) -> Option<Vec<u8>> {
    // Most writes are successful responses or bodies: decided by their first bytes.
    if !(written.starts_with(b"HTTP/1.1 4") || written.starts_with(b"HTTP/1.1 5")) {
        return None;
    }
    let head_end = written.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&written[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    if status < 400 {
        return None;
    }
    let mut date = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case(HASH_HEADER) {
            return None;
        }
        if name.trim().eq_ignore_ascii_case("date") {
            date = Some(value.trim());
        }
    }
    let (slug, title, detail) = match status {
        400 => (
            "bad-request",
            "Bad request",
            "the request is not valid HTTP/1.1: a malformed request line or header, or a missing, repeated, \
             negative or otherwise invalid Content-Length",
        ),
        431 => (
            "request-header-fields-too-large",
            "Request header fields too large",
            "the request has too many header fields (at most 100) or too large a head",
        ),
        414 => ("uri-too-long", "URI too long", "the request target is too long"),
        505 => (
            "http-version-not-supported",
            "HTTP version not supported",
            "only HTTP/1.1 and HTTP/1.0 are served",
        ),
        _ => ("bad-request", "Bad request", "the request could not be parsed"),
    };
    metrics::counter!("acgs_http_unparsable_requests_total", "status" => status.to_string()).increment(1);
    let body = json!({
        "type": format!("urn:acgs:problem:{slug}"),
        "title": title,
        "status": status,
        "detail": detail,
    })
    .to_string();
    let reason = status_line.get(13..).unwrap_or(title);
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        body.len()
    );
    if let Some(date) = date {
        response.push_str(&format!("date: {date}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    Some(response.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::replacement_for;

    #[test]
    fn hypers_empty_error_answer_becomes_a_problem_document() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\
                      date: Mon, 07 Dec 2026 12:12:41 GMT\r\n\r\n";
        let replaced = String::from_utf8(replacement_for(hyper).unwrap()).unwrap();
        let (head, body) = replaced.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Mon, 07 Dec 2026 12:12:41 GMT"));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 431);
        assert_eq!(problem["type"], "urn:acgs:problem:request-header-fields-too-large");
    }

    #[test]
    fn responses_of_the_router_and_successes_are_left_alone() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n\
                     x-constitutional-hash: 55241023141a1c86\r\ncontent-length: 2\r\n\r\n{}";
        assert!(replacement_for(ours).is_none());
        assert!(replacement_for(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement_for(b"{\"partial\": \"body bytes\"}").is_none());
    }
}
