//! The test bench: the real SBF binary loaded into LiteSVM, keypairs for the creator, council, emergency set
//! and anchor authority, and helpers that send the program's instructions (built by the program crate's
//! `client` module, as `acgs chain` builds them) in signed transactions.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
// LiteSVM's result type carries the whole failed transaction's metadata; it is what the tests inspect.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;

use litesvm::LiteSVM;
use litesvm::types::{FailedTransactionMetadata, TransactionMetadata};
use quantumagi_program::client::{ClientInstruction, GovernanceClient, InitializeArgs};
use quantumagi_program::state::{AccountLayout, Governance, Key, KeySet, Params, roles};
use solana_address::Address;
use solana_clock::Clock;
use solana_instruction::{AccountMeta, Instruction};
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;

/// The program binary: `QUANTUMAGI_SO`, or what scripts/build-sbf.sh writes.
pub fn program_path() -> PathBuf {
    std::env::var_os("QUANTUMAGI_SO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/sbf/quantumagi.so"))
}

pub const START: i64 = 1_800_000_000;
pub const PARAMS: Params = Params {
    approval_threshold_bps: 6000,
    quorum_bps: 5000,
    voting_period_s: 3600,
    timelock_s: 600,
};
pub const CONSTITUTION_V1: Key = [0xc1; 32];

pub fn key(k: &Keypair) -> Key {
    k.pubkey().to_bytes()
}

pub fn address(k: &Key) -> Address {
    Address::new_from_array(*k)
}

/// The program's custom error code in a failed transaction, if that is what failed.
pub fn custom_error(result: &Result<TransactionMetadata, FailedTransactionMetadata>) -> Option<u32> {
    match result {
        Err(failed) => match &failed.err {
            TransactionError::InstructionError(_, InstructionError::Custom(code)) => Some(*code),
            _ => None,
        },
        Ok(_) => None,
    }
}

/// The instruction error of a failed transaction.
pub fn instruction_error(result: &Result<TransactionMetadata, FailedTransactionMetadata>) -> Option<InstructionError> {
    match result {
        Err(failed) => match &failed.err {
            TransactionError::InstructionError(_, e) => Some(e.clone()),
            _ => None,
        },
        Ok(_) => None,
    }
}

/// Fail with the logs unless the transaction succeeded.
#[track_caller]
pub fn ok(result: Result<TransactionMetadata, FailedTransactionMetadata>) -> TransactionMetadata {
    match result {
        Ok(meta) => meta,
        Err(failed) => panic!("transaction failed: {:?}\n{}", failed.err, failed.meta.pretty_logs()),
    }
}

/// Expect the program's error `code`.
#[track_caller]
pub fn refused(
    result: Result<TransactionMetadata, FailedTransactionMetadata>,
    code: quantumagi_program::error::QgError,
) {
    let got = custom_error(&result);
    assert_eq!(
        got,
        Some(code as u32),
        "expected {code:?} ({}), got {:?}",
        code as u32,
        result.as_ref().err().map(|f| (&f.err, f.meta.pretty_logs()))
    );
}

pub fn to_instruction(ci: &ClientInstruction) -> Instruction {
    Instruction {
        program_id: address(&ci.program_id),
        accounts: ci
            .accounts
            .iter()
            .map(|a| AccountMeta {
                pubkey: address(&a.pubkey),
                is_signer: a.is_signer,
                is_writable: a.is_writable,
            })
            .collect(),
        data: ci.data.clone(),
    }
}

pub struct Bench {
    pub svm: LiteSVM,
    pub program_id: Key,
    pub gov: GovernanceClient,
    pub creator: Keypair,
    /// Council: weights 50, 30, 20, every role.
    pub council: Vec<Keypair>,
    /// Emergency set, 2 of 3.
    pub emergency: Vec<Keypair>,
    pub anchor: Keypair,
    pub outsider: Keypair,
}

impl Bench {
    /// A fresh VM with the program loaded and funded keys; nothing initialised.
    pub fn empty() -> Self {
        let mut svm = LiteSVM::new();
        let program = Keypair::new();
        let path = program_path();
        svm.add_program_from_file(program.pubkey(), &path)
            .unwrap_or_else(|e| panic!("cannot load {} (run scripts/build-sbf.sh): {e:?}", path.display()));
        let creator = Keypair::new();
        let council: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
        let emergency: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
        let anchor = Keypair::new();
        let outsider = Keypair::new();
        for k in std::iter::once(&creator)
            .chain(&council)
            .chain(&emergency)
            .chain([&anchor, &outsider])
        {
            svm.airdrop(&k.pubkey(), 10_000_000_000).unwrap();
        }
        let program_id = key(&program);
        let gov = GovernanceClient::new(program_id, &key(&creator));
        let mut bench = Self {
            svm,
            program_id,
            gov,
            creator,
            council,
            emergency,
            anchor,
            outsider,
        };
        bench.set_time(START);
        bench
    }

    /// Initialised, with the council added and the setup finished.
    pub fn ready() -> Self {
        let mut b = Self::empty();
        ok(b.initialize());
        let weights = [50, 30, 20];
        for (i, weight) in weights.into_iter().enumerate() {
            let member = key(&b.council[i]);
            let creator = b.creator.insecure_clone();
            let ix = b.gov.add_member(&key(&creator), &member, weight, roles::ALL).unwrap();
            ok(b.send(&ix, &[&creator]));
        }
        let creator = b.creator.insecure_clone();
        let ix = b.gov.finish_setup(&key(&creator)).unwrap();
        ok(b.send(&ix, &[&creator]));
        b
    }

    pub fn emergency_set(&self) -> KeySet {
        let mut set = KeySet::EMPTY;
        set.threshold = 2;
        set.count = 3;
        for (i, k) in self.emergency.iter().enumerate() {
            set.keys[i] = key(k);
        }
        set
    }

    pub fn init_args(&self) -> InitializeArgs {
        InitializeArgs {
            constitution_hash: CONSTITUTION_V1,
            constitution_version: 1,
            params: PARAMS,
            emergency: self.emergency_set(),
            anchor_authority: key(&self.anchor),
        }
    }

    pub fn initialize(&mut self) -> Result<TransactionMetadata, FailedTransactionMetadata> {
        let creator = self.creator.insecure_clone();
        let ix = self.gov.initialize(&key(&creator), &self.init_args()).unwrap();
        self.send(&ix, &[&creator])
    }

    /// Send one instruction signed by `signers` (the first pays), with a fresh blockhash so identical
    /// transactions are not deduplicated.
    pub fn send(
        &mut self,
        ix: &ClientInstruction,
        signers: &[&Keypair],
    ) -> Result<TransactionMetadata, FailedTransactionMetadata> {
        self.send_raw(to_instruction(ix), signers)
    }

    pub fn send_raw(
        &mut self,
        ix: Instruction,
        signers: &[&Keypair],
    ) -> Result<TransactionMetadata, FailedTransactionMetadata> {
        self.svm.expire_blockhash();
        let payer = signers[0].pubkey();
        let tx = Transaction::new_signed_with_payer(&[ix], Some(&payer), signers, self.svm.latest_blockhash());
        self.svm.send_transaction(tx)
    }

    pub fn set_time(&mut self, unix: i64) {
        let mut clock: Clock = self.svm.get_sysvar();
        clock.unix_timestamp = unix;
        clock.slot += 1;
        self.svm.set_sysvar(&clock);
    }

    pub fn now(&self) -> i64 {
        self.svm.get_sysvar::<Clock>().unix_timestamp
    }

    pub fn advance(&mut self, secs: i64) {
        let t = self.now() + secs;
        self.set_time(t);
    }

    /// Decode a program account.
    pub fn read<T: AccountLayout>(&self, at: &Key) -> T {
        let account = self.svm.get_account(&address(at)).expect("account exists");
        assert_eq!(account.owner, address(&self.program_id), "owned by the program");
        T::decode(&account.data).expect("decodes")
    }

    pub fn governance(&self) -> Governance {
        self.read(&self.gov.governance)
    }

    pub fn exists(&self, at: &Key) -> bool {
        self.svm.get_account(&address(at)).is_some_and(|a| a.lamports > 0)
    }
}

/// The `Program data:` events in a transaction's logs, decoded to their first field (the name).
pub fn event_names(meta: &TransactionMetadata) -> Vec<String> {
    use base64::Engine as _;
    meta.logs
        .iter()
        .filter_map(|l| l.strip_prefix("Program data: "))
        .filter_map(|fields| fields.split(' ').next())
        .filter_map(|first| base64::engine::general_purpose::STANDARD.decode(first).ok())
        .map(|name| String::from_utf8_lossy(&name).into_owned())
        .collect()
}
