//! What can go wrong between this client and the cluster: one typed error for the RPC calls, building, signing and
//! sending transactions, and reading the program's accounts. Each message says what failed; the underlying error
//! is its source.

use std::path::PathBuf;

use quantumagi_program::error::QgError;

use crate::keys::KeysError;
use crate::keys::keypair::AddressError;
use crate::payload::PayloadError;

/// An error of the Quantumagi client.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The RPC endpoint did not answer.
    #[error("cannot reach the Solana RPC endpoint {url}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint's answer was not JSON.
    #[error("{url} answered {method} with no JSON ({status})")]
    NotJson {
        /// The endpoint.
        url: String,
        /// The RPC method.
        method: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// Why the body does not decode.
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint's answer had neither a result nor an error.
    #[error("{url} answered {method} without a result")]
    NoResult {
        /// The endpoint.
        url: String,
        /// The RPC method.
        method: String,
    },
    /// The result does not have the expected shape.
    #[error("unexpected {method} result from {url}")]
    UnexpectedResult {
        /// The endpoint.
        url: String,
        /// The RPC method.
        method: String,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// The endpoint answered with a JSON-RPC error: the cluster (or its preflight simulation of the program)
    /// refused. With the program's logs when the simulation returned them.
    #[error("{method}: {reason}{}", program_logs(.logs))]
    Refused {
        /// The RPC method.
        method: String,
        /// The error, in words (the program's error by name and code when the simulation says which).
        reason: String,
        /// The program's log lines.
        logs: Vec<String>,
    },
    /// A field the answer must have is missing.
    #[error("{0}")]
    MissingField(&'static str),
    /// An address in the answer is not one.
    #[error("{what}")]
    AddressInAnswer {
        /// Which address.
        what: &'static str,
        /// What is wrong with it.
        #[source]
        source: AddressError,
    },
    /// An account's data is not base64.
    #[error("the account's data is not base64")]
    NotBase64(#[source] base64::DecodeError),
    /// The transaction was executed and failed.
    #[error("transaction {signature} failed: {reason}")]
    TransactionFailed {
        /// Its signature.
        signature: String,
        /// The error, in words.
        reason: String,
    },
    /// The transaction was not confirmed in time.
    #[error("transaction {signature} was not confirmed within 60 s")]
    NotConfirmed {
        /// Its signature.
        signature: String,
    },
    /// A transaction was to be sent without a signer to pay for it.
    #[error("no signer")]
    NoSigner,
    /// Signing failed.
    #[error("signing the transaction (a required signer's keypair is missing?)")]
    Signing(#[source] solana_signer::SignerError),
    /// Encoding the signed transaction failed.
    #[error("encoding the transaction")]
    Encoding(#[source] wincode::WriteError),
    /// A keypair file that the Solana crates do not take as a signer.
    #[error("`{}`: {reason}", .path.display())]
    Signer {
        /// The keypair file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The account is not there.
    #[error("no {what} at {at}")]
    MissingAccount {
        /// What it should be (`governance`, `proposal`).
        what: String,
        /// Its address.
        at: String,
    },
    /// The account belongs to another program.
    #[error("the {what} at {at} is not owned by the program {program}")]
    ForeignAccount {
        /// What it should be.
        what: String,
        /// Its address.
        at: String,
        /// The Quantumagi program's address.
        program: String,
    },
    /// The account's data is not the layout it should have.
    #[error("the {what} at {at} does not decode: {reason:?}")]
    Undecodable {
        /// What it should be.
        what: String,
        /// Its address.
        at: String,
        /// The program's decoding error.
        reason: QgError,
    },
    /// The program crate's builder refused the instruction's arguments.
    #[error("cannot build the instruction: {0:?}")]
    Instruction(QgError),
    /// An instruction's arguments are not valid.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// An address is not one.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A keypair file cannot be read.
    #[error(transparent)]
    Keys(#[from] KeysError),
}

impl From<QgError> for ChainError {
    fn from(e: QgError) -> Self {
        Self::Instruction(e)
    }
}

/// The program's log lines after an error, one per line under `program logs:` (nothing when there are none).
fn program_logs(logs: &[String]) -> String {
    if logs.is_empty() {
        return String::new();
    }
    let mut text = String::from("\nprogram logs:");
    for line in logs {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}
