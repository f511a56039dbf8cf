//! The example receipt in docs/integrity.md is a test vector: it verifies under the documented key, and a
//! changed receipt does not. Keeps the documentation true to the code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acgs_audit::{Receipt, VerifierKey};

const DOC: &str = include_str!("../../../docs/integrity.md");
const KEY: &str = "acgs.local/audit/1b71ca39+b0ce6826+ARtxyjmLWDP9e8pvRcemPw2uX8xrab0sSNVj+cNdbOlE";

fn documented_receipt() -> Receipt {
    let start = DOC
        .find(r#"{"format": "acgs-receipt/v1""#)
        .expect("the receipt example is in the doc");
    let end = start + DOC[start..].find("\n```").expect("the example ends its code block");
    serde_json::from_str(&DOC[start..end]).expect("the example is a receipt")
}

#[test]
fn the_documented_receipt_verifies_under_the_documented_key() {
    assert!(DOC.contains(KEY), "the doc names the key");
    let key = VerifierKey::parse(KEY).unwrap();
    let receipt = documented_receipt();
    let verified = receipt.verify(&key).unwrap();
    assert_eq!((verified.checkpoint.size, receipt.seq), (3, 1));
    assert_eq!(verified.event["decision"]["resource"]["id"], "opex-eur");
    let mut forged = receipt.clone();
    forged.event = forged.event.replace("opex-eur", "payroll-eur");
    assert!(forged.verify(&key).is_err());
}
