//! The few Solana JSON-RPC calls `acgs chain` needs, over plain HTTP(S): the latest blockhash, an account's
//! data, sending a transaction (with the cluster's preflight simulation) and waiting for its confirmation. A
//! refusal by the Quantumagi program is reported by its error's name and code, with the program's logs.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quantumagi_program::error::QgError;
use quantumagi_program::state::Key;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::keys::keypair::PublicKey;

/// A JSON-RPC endpoint of a Solana cluster (devnet, mainnet, a local validator).
pub struct Rpc {
    client: reqwest::Client,
    url: String,
}

/// An account as the cluster returns it.
pub struct AccountData {
    /// The owning program.
    pub owner: Key,
    /// Its data.
    pub data: Vec<u8>,
}

/// Parse a base58 address (the `acgs keys` public-key form).
pub fn parse_address(text: &str) -> Result<Key> {
    text.trim().parse::<PublicKey>().map(|k| k.0).map_err(|e| anyhow!(e))
}

/// An address in base58.
pub fn address(key: &Key) -> String {
    PublicKey(*key).to_string()
}

impl Rpc {
    /// The endpoint at `url`.
    pub fn new(url: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .client
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .with_context(|| format!("cannot reach the Solana RPC endpoint {}", self.url))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("{} answered {method} with no JSON ({status})", self.url))?;
        if let Some(error) = body.get("error") {
            return Err(rpc_error(method, error));
        }
        let result = body
            .get("result")
            .cloned()
            .ok_or_else(|| anyhow!("{} answered {method} without a result", self.url))?;
        serde_json::from_value(result).with_context(|| format!("unexpected {method} result from {}", self.url))
    }

    /// The latest blockhash (at `confirmed`).
    pub async fn latest_blockhash(&self) -> Result<[u8; 32]> {
        let result: Value = self
            .call("getLatestBlockhash", json!([{"commitment": "confirmed"}]))
            .await?;
        let text = result["value"]["blockhash"]
            .as_str()
            .ok_or_else(|| anyhow!("getLatestBlockhash returned no blockhash"))?;
        parse_address(text).context("the blockhash")
    }

    /// The account at `key`, if it exists.
    pub async fn account(&self, key: &Key) -> Result<Option<AccountData>> {
        let result: Value = self
            .call(
                "getAccountInfo",
                json!([address(key), {"encoding": "base64", "commitment": "confirmed"}]),
            )
            .await?;
        let value = &result["value"];
        if value.is_null() {
            return Ok(None);
        }
        let data = value["data"][0]
            .as_str()
            .ok_or_else(|| anyhow!("getAccountInfo returned no base64 data"))?;
        Ok(Some(AccountData {
            owner: parse_address(value["owner"].as_str().unwrap_or_default()).context("the account's owner")?,
            data: STANDARD.decode(data).context("the account's data is not base64")?,
        }))
    }

    /// Send a signed transaction (after the cluster's preflight simulation) and wait until it is confirmed;
    /// returns its signature.
    pub async fn send_and_confirm(&self, transaction: &[u8]) -> Result<String> {
        let signature: String = self
            .call(
                "sendTransaction",
                json!([STANDARD.encode(transaction), {"encoding": "base64", "preflightCommitment": "confirmed"}]),
            )
            .await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let statuses: Value = self
                .call(
                    "getSignatureStatuses",
                    json!([[&signature], {"searchTransactionHistory": true}]),
                )
                .await?;
            let status = &statuses["value"][0];
            if !status.is_null() {
                if !status["err"].is_null() {
                    bail!("transaction {signature} failed: {}", describe_error(&status["err"]));
                }
                if matches!(status["confirmationStatus"].as_str(), Some("confirmed" | "finalized")) {
                    return Ok(signature);
                }
            }
            if Instant::now() > deadline {
                bail!("transaction {signature} was not confirmed within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
}

/// A JSON-RPC error, with the program's error named when the simulation says which.
fn rpc_error(method: &str, error: &Value) -> anyhow::Error {
    let message = error["message"].as_str().unwrap_or("unknown error");
    let data = &error["data"];
    let mut text = match data.get("err") {
        Some(err) if !err.is_null() => format!("{method}: {}", describe_error(err)),
        _ => format!("{method}: {message}"),
    };
    if let Some(logs) = data["logs"].as_array().filter(|l| !l.is_empty()) {
        text.push_str("\nprogram logs:");
        for line in logs.iter().filter_map(Value::as_str) {
            text.push_str("\n  ");
            text.push_str(line);
        }
    }
    anyhow!(text)
}

/// A transaction error as the RPC encodes it (`{"InstructionError": [0, {"Custom": 6006}]}`), in words.
pub fn describe_error(err: &Value) -> String {
    if let Some(code) = err["InstructionError"][1]["Custom"].as_u64() {
        return match u32::try_from(code).ok().and_then(QgError::from_code) {
            Some(e) => format!("the program refused: {e:?} ({code})"),
            None => format!("custom program error {code}"),
        };
    }
    if let Some(reason) = err["InstructionError"][1].as_str() {
        return format!("the runtime refused the instruction: {reason}");
    }
    err.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_errors_are_named() {
        let err = json!({"InstructionError": [0, {"Custom": 6006}]});
        assert_eq!(describe_error(&err), "the program refused: Unauthorized (6006)");
        let err = json!({"InstructionError": [0, {"Custom": 1}]});
        assert_eq!(describe_error(&err), "custom program error 1");
        let err = json!({"InstructionError": [0, "MissingRequiredSignature"]});
        assert!(describe_error(&err).contains("MissingRequiredSignature"));
        assert_eq!(describe_error(&json!("AccountNotFound")), "\"AccountNotFound\"");
    }

    #[test]
    fn addresses_round_trip_and_bad_ones_are_refused() {
        let key = [7u8; 32];
        assert_eq!(parse_address(&address(&key)).unwrap(), key);
        assert!(parse_address("0OIl").is_err());
        assert!(parse_address("11111111").is_err());
    }
}
