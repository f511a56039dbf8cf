//! The few Solana JSON-RPC calls the client needs, over plain HTTP(S): the latest blockhash, an account's data,
//! sending a transaction (with the cluster's preflight simulation) and waiting for its confirmation. A refusal by
//! the Quantumagi program is reported by its error's name and code, with the program's logs.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quantumagi_program::error::QgError;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Key;
use crate::address::{address, parse_address};
use crate::error::ChainError;

/// A JSON-RPC endpoint of a Solana cluster (devnet, mainnet, a local validator).
#[derive(Debug, Clone)]
pub struct Rpc {
    client: reqwest::Client,
    url: String,
}

/// An account as the cluster returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountData {
    /// The owning program.
    pub owner: Key,
    /// Its data.
    pub data: Vec<u8>,
}

impl Rpc {
    /// The endpoint at `url`.
    pub fn new(url: &str) -> Result<Self, ChainError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(ChainError::HttpClient)?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    /// The URL of the endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ChainError> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .client
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .map_err(|source| ChainError::Unreachable {
                url: self.url.clone(),
                source,
            })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|source| ChainError::NotJson {
            url: self.url.clone(),
            method: method.to_owned(),
            status,
            source,
        })?;
        if let Some(error) = body.get("error") {
            return Err(rpc_error(method, error));
        }
        let result = body.get("result").cloned().ok_or_else(|| ChainError::NoResult {
            url: self.url.clone(),
            method: method.to_owned(),
        })?;
        serde_json::from_value(result).map_err(|source| ChainError::UnexpectedResult {
            url: self.url.clone(),
            method: method.to_owned(),
            source,
        })
    }

    /// The latest blockhash (at `confirmed`).
    pub async fn latest_blockhash(&self) -> Result<[u8; 32], ChainError> {
        let result: Value = self
            .call("getLatestBlockhash", json!([{"commitment": "confirmed"}]))
            .await?;
        let text = result["value"]["blockhash"]
            .as_str()
            .ok_or(ChainError::MissingField("getLatestBlockhash returned no blockhash"))?;
        parse_address(text).map_err(|source| ChainError::AddressInAnswer {
            what: "the blockhash",
            source,
        })
    }

    /// The account at `key`, if it exists.
    pub async fn account(&self, key: &Key) -> Result<Option<AccountData>, ChainError> {
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
            .ok_or(ChainError::MissingField("getAccountInfo returned no base64 data"))?;
        Ok(Some(AccountData {
            owner: parse_address(value["owner"].as_str().unwrap_or_default()).map_err(|source| {
                ChainError::AddressInAnswer {
                    what: "the account's owner",
                    source,
                }
            })?,
            data: STANDARD.decode(data).map_err(ChainError::NotBase64)?,
        }))
    }

    /// Send a signed transaction (after the cluster's preflight simulation) and wait until it is confirmed;
    /// returns its signature.
    pub async fn send_and_confirm(&self, transaction: &[u8]) -> Result<String, ChainError> {
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
                    return Err(ChainError::TransactionFailed {
                        reason: describe_error(&status["err"]),
                        signature,
                    });
                }
                if matches!(status["confirmationStatus"].as_str(), Some("confirmed" | "finalized")) {
                    return Ok(signature);
                }
            }
            if Instant::now() > deadline {
                return Err(ChainError::NotConfirmed { signature });
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
}

/// A JSON-RPC error, with the program's error named when the simulation says which, and its logs.
fn rpc_error(method: &str, error: &Value) -> ChainError {
    let data = &error["data"];
    let reason = match data.get("err") {
        Some(err) if !err.is_null() => describe_error(err),
        _ => error["message"].as_str().unwrap_or("unknown error").to_owned(),
    };
    let logs = data["logs"]
        .as_array()
        .map(|lines| lines.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    ChainError::Refused {
        method: method.to_owned(),
        reason,
        logs,
    }
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
    fn refusals_carry_the_program_logs() {
        let error = json!({"message": "simulation failed", "data": {
            "err": {"InstructionError": [0, {"Custom": 6006}]},
            "logs": ["Program log: one", "Program log: two"],
        }});
        assert_eq!(
            rpc_error("sendTransaction", &error).to_string(),
            "sendTransaction: the program refused: Unauthorized (6006)\nprogram logs:\n  Program log: one\n  Program log: two"
        );
        let error = json!({"message": "blockhash not found"});
        assert_eq!(
            rpc_error("sendTransaction", &error).to_string(),
            "sendTransaction: blockhash not found"
        );
    }
}
