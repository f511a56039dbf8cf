//! The program's accounts: their exact byte layouts (little-endian, fixed size), how each is read and written,
//! and the seeds of their program-derived addresses. Every account starts with a kind tag and a layout
//! version, so an account of one kind can never be read as another.

use crate::error::QgError;

/// A 32-byte public key or hash.
pub type Key = [u8; 32];

/// The most keys in an emergency set.
pub const MAX_EMERGENCY_KEYS: usize = 7;
/// The most council members.
pub const MAX_MEMBERS: u32 = 64;
/// The largest voting weight of one member.
pub const MAX_WEIGHT: u32 = 1_000_000;
/// Layout version of every account this program writes.
pub const LAYOUT_VERSION: u8 = 1;
/// Bytes of a proposal's payload.
pub const PAYLOAD_LEN: usize = 64;

/// Seed prefixes of the program-derived addresses.
pub mod seeds {
    /// `["governance", creator]`
    pub const GOVERNANCE: &[u8] = b"governance";
    /// `["member", governance, member key]`
    pub const MEMBER: &[u8] = b"member";
    /// `["proposal", governance, id (u64 little-endian)]`
    pub const PROPOSAL: &[u8] = b"proposal";
    /// `["vote", proposal, member key]`
    pub const VOTE: &[u8] = b"vote";
    /// `["appeal", governance, decision hash]`
    pub const APPEAL: &[u8] = b"appeal";
    /// `["anchor", governance]`
    pub const ANCHOR: &[u8] = b"anchor";
    /// `["policy", governance, policy hash]`
    pub const POLICY: &[u8] = b"policy";
}

/// The kind tag in every account's first byte.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum AccountKind {
    /// [`Governance`]
    Governance = 1,
    /// [`Member`]
    Member = 2,
    /// [`Proposal`]
    Proposal = 3,
    /// [`VoteRecord`]
    Vote = 4,
    /// [`Appeal`]
    Appeal = 5,
    /// [`Anchor`]
    Anchor = 6,
    /// [`Policy`]
    Policy = 7,
}

/// Reads fixed-width little-endian fields from account or instruction data.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The next `n` bytes.
    #[inline(always)]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], QgError> {
        let end = self.pos.checked_add(n).ok_or(QgError::Overflow)?;
        let bytes = self.buf.get(self.pos..end).ok_or(QgError::WrongAccountData)?;
        self.pos = end;
        Ok(bytes)
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], QgError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A byte.
    #[inline(always)]
    pub fn u8(&mut self) -> Result<u8, QgError> {
        Ok(self.array::<1>()?[0])
    }
    /// A boolean byte (0 or 1).
    #[inline(always)]
    pub fn bool(&mut self) -> Result<bool, QgError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(QgError::WrongAccountData),
        }
    }
    /// A `u16`.
    #[inline(always)]
    pub fn u16(&mut self) -> Result<u16, QgError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// A `u32`.
    #[inline(always)]
    pub fn u32(&mut self) -> Result<u32, QgError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A `u64`.
    #[inline(always)]
    pub fn u64(&mut self) -> Result<u64, QgError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// An `i64`.
    #[inline(always)]
    pub fn i64(&mut self) -> Result<i64, QgError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// 32 bytes.
    #[inline(always)]
    pub fn key(&mut self) -> Result<Key, QgError> {
        self.array()
    }
    /// Whether every byte was read.
    pub fn is_done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Writes fixed-width little-endian fields into a buffer of known size.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Append bytes.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), QgError> {
        let end = self.pos.checked_add(bytes.len()).ok_or(QgError::Overflow)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(QgError::WrongAccountData)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
    /// A byte.
    pub fn u8(&mut self, v: u8) -> Result<(), QgError> {
        self.put(&[v])
    }
    /// A boolean byte.
    pub fn bool(&mut self, v: bool) -> Result<(), QgError> {
        self.put(&[u8::from(v)])
    }
    /// A `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// An `i64`.
    pub fn i64(&mut self, v: i64) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
}

/// An account kind with a fixed layout.
pub trait AccountLayout: Sized {
    /// Its kind tag.
    const KIND: AccountKind;
    /// Its exact size in bytes, header included.
    const LEN: usize;
    /// Read the fields after the header.
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError>;
    /// Write the fields after the header.
    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError>;

    /// Decode a whole account (size, kind tag and version checked).
    fn decode(data: &[u8]) -> Result<Self, QgError> {
        if data.len() != Self::LEN {
            return Err(QgError::WrongAccountData);
        }
        let mut r = Reader::new(data);
        if r.u8()? != Self::KIND as u8 || r.u8()? != LAYOUT_VERSION {
            return Err(QgError::WrongAccountData);
        }
        let value = Self::read_fields(&mut r)?;
        if !r.is_done() {
            return Err(QgError::WrongAccountData);
        }
        Ok(value)
    }

    /// Encode into a whole account's data (exactly [`AccountLayout::LEN`] bytes).
    fn encode(&self, data: &mut [u8]) -> Result<(), QgError> {
        if data.len() != Self::LEN {
            return Err(QgError::WrongAccountData);
        }
        let mut w = Writer::new(data);
        w.u8(Self::KIND as u8)?;
        w.u8(LAYOUT_VERSION)?;
        self.write_fields(&mut w)?;
        if w.len() != Self::LEN {
            return Err(QgError::WrongAccountData);
        }
        Ok(())
    }
}

/// An M-of-N set of keys (the emergency set).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct KeySet {
    /// Approvals needed (M).
    pub threshold: u8,
    /// Keys in use (N); the rest of `keys` is zero.
    pub count: u8,
    /// The keys.
    pub keys: [Key; MAX_EMERGENCY_KEYS],
}

impl KeySet {
    /// Encoded size.
    pub const LEN: usize = 2 + 32 * MAX_EMERGENCY_KEYS;

    /// An empty set.
    pub const EMPTY: KeySet = KeySet {
        threshold: 0,
        count: 0,
        keys: [[0; 32]; MAX_EMERGENCY_KEYS],
    };

    /// Valid: 1 ≤ M ≤ N ≤ 7, distinct non-zero keys, unused slots zero.
    pub fn validate(&self) -> Result<(), QgError> {
        let n = usize::from(self.count);
        if self.threshold == 0 || self.threshold > self.count || n > MAX_EMERGENCY_KEYS {
            return Err(QgError::InvalidInstruction);
        }
        for (i, key) in self.keys.iter().enumerate() {
            let zero = key.iter().all(|b| *b == 0);
            if (i < n) == zero {
                return Err(QgError::InvalidInstruction);
            }
            if i < n && self.keys.iter().take(i).any(|other| other == key) {
                return Err(QgError::InvalidInstruction);
            }
        }
        Ok(())
    }

    /// The position of `key` in the set.
    pub fn index_of(&self, key: &Key) -> Option<usize> {
        self.keys.iter().take(usize::from(self.count)).position(|k| k == key)
    }

    /// Read from instruction or account data.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, QgError> {
        let threshold = r.u8()?;
        let count = r.u8()?;
        let mut keys = [[0u8; 32]; MAX_EMERGENCY_KEYS];
        for key in keys.iter_mut() {
            *key = r.key()?;
        }
        Ok(Self { threshold, count, keys })
    }

    /// Write into instruction or account data.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.threshold)?;
        w.u8(self.count)?;
        for key in &self.keys {
            w.put(key)?;
        }
        Ok(())
    }

    /// The set's canonical bytes (what a transfer motion's payload hashes).
    pub fn to_bytes(&self) -> Result<[u8; KeySet::LEN], QgError> {
        let mut out = [0u8; KeySet::LEN];
        self.write(&mut Writer::new(&mut out))?;
        Ok(out)
    }
}

/// The voting rules a governance applies to new proposals.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Params {
    /// Share of the yes+no weight that must be yes, in basis points (1–10000).
    pub approval_threshold_bps: u16,
    /// Share of the council's weight that must take part (yes, no or abstain), in basis points (1–10000).
    pub quorum_bps: u16,
    /// How long a proposal is open for votes, in seconds (≥ 1).
    pub voting_period_s: i64,
    /// Delay between a proposal passing and its execution, in seconds (≥ 0).
    pub timelock_s: i64,
}

impl Params {
    /// Encoded size.
    pub const LEN: usize = 2 + 2 + 8 + 8;

    /// Within range.
    pub fn validate(&self) -> Result<(), QgError> {
        let bps = |v: u16| (1..=10_000).contains(&v);
        if !bps(self.approval_threshold_bps)
            || !bps(self.quorum_bps)
            || self.voting_period_s < 1
            || self.timelock_s < 0
            // At most a year each, so that times never overflow.
            || self.voting_period_s > 366 * 86_400
            || self.timelock_s > 366 * 86_400
        {
            return Err(QgError::InvalidInstruction);
        }
        Ok(())
    }

    /// Read.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            approval_threshold_bps: r.u16()?,
            quorum_bps: r.u16()?,
            voting_period_s: r.i64()?,
            timelock_s: r.i64()?,
        })
    }

    /// Write.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u16(self.approval_threshold_bps)?;
        w.u16(self.quorum_bps)?;
        w.i64(self.voting_period_s)?;
        w.i64(self.timelock_s)
    }
}

/// What an emergency motion does once enough of the emergency set approved it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum MotionKind {
    /// No motion is open.
    None = 0,
    /// Halt the governance (payload: the reason's hash).
    Halt = 1,
    /// Resume after a halt (payload: zero).
    Resume = 2,
    /// Veto a proposal that has not been executed (payload: the proposal's address).
    Veto = 3,
    /// Hand the emergency authority to a new set (payload: SHA-256 of the new set's bytes); the new set must
    /// accept before it takes over.
    TransferAuthority = 4,
}

impl MotionKind {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            0 => Self::None,
            1 => Self::Halt,
            2 => Self::Resume,
            3 => Self::Veto,
            4 => Self::TransferAuthority,
            _ => return Err(QgError::InvalidInstruction),
        })
    }
}

/// The emergency motion being approved, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Motion {
    /// What it does.
    pub kind: MotionKind,
    /// What it applies to.
    pub payload: Key,
    /// Which members of the emergency set approved (bit i = key i).
    pub approvals: u8,
    /// When it was opened (unix seconds).
    pub opened_at: i64,
}

impl Motion {
    /// No motion.
    pub const NONE: Motion = Motion {
        kind: MotionKind::None,
        payload: [0; 32],
        approvals: 0,
        opened_at: 0,
    };
}

/// The governance of one organisation: its constitution, council totals, voting rules, emergency set and
/// halt state. PDA `["governance", creator]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Governance {
    /// Bump of its address.
    pub bump: u8,
    /// While true the creator may add the initial council; false forever after `finish_setup`.
    pub setup_open: bool,
    /// Halted: no proposal may be made or executed.
    pub halted: bool,
    /// Who created it (part of its address).
    pub creator: Key,
    /// SHA-256 of the active constitution's canonical form (the ACGS constitutional hash).
    pub constitution_hash: Key,
    /// Its version number.
    pub constitution_version: u64,
    /// Voting rules for new proposals.
    pub params: Params,
    /// The id the next proposal gets.
    pub next_proposal_id: u64,
    /// Active council members.
    pub member_count: u32,
    /// Their total weight.
    pub total_weight: u64,
    /// The emergency set (halt, resume, veto, authority transfer).
    pub emergency: KeySet,
    /// Hash of the reason given for the current halt.
    pub halt_reason: Key,
    /// When the current halt began (0 when not halted).
    pub halted_since: i64,
    /// The open emergency motion.
    pub motion: Motion,
    /// A new emergency set approved by the current one, waiting for its acceptance (count 0: none).
    pub pending_emergency: KeySet,
    /// The key that may anchor audit-log checkpoints.
    pub anchor_authority: Key,
    /// Appeals submitted so far.
    pub appeals: u64,
}

impl AccountLayout for Governance {
    const KIND: AccountKind = AccountKind::Governance;
    const LEN: usize =
        2 + 3 + 32 + 32 + 8 + Params::LEN + 8 + 4 + 8 + KeySet::LEN + 32 + 8 + (1 + 32 + 1 + 8) + KeySet::LEN + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            setup_open: r.bool()?,
            halted: r.bool()?,
            creator: r.key()?,
            constitution_hash: r.key()?,
            constitution_version: r.u64()?,
            params: Params::read(r)?,
            next_proposal_id: r.u64()?,
            member_count: r.u32()?,
            total_weight: r.u64()?,
            emergency: KeySet::read(r)?,
            halt_reason: r.key()?,
            halted_since: r.i64()?,
            motion: Motion {
                kind: MotionKind::from_u8(r.u8()?).map_err(|_| QgError::WrongAccountData)?,
                payload: r.key()?,
                approvals: r.u8()?,
                opened_at: r.i64()?,
            },
            pending_emergency: KeySet::read(r)?,
            anchor_authority: r.key()?,
            appeals: r.u64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.bool(self.setup_open)?;
        w.bool(self.halted)?;
        w.put(&self.creator)?;
        w.put(&self.constitution_hash)?;
        w.u64(self.constitution_version)?;
        self.params.write(w)?;
        w.u64(self.next_proposal_id)?;
        w.u32(self.member_count)?;
        w.u64(self.total_weight)?;
        self.emergency.write(w)?;
        w.put(&self.halt_reason)?;
        w.i64(self.halted_since)?;
        w.u8(self.motion.kind as u8)?;
        w.put(&self.motion.payload)?;
        w.u8(self.motion.approvals)?;
        w.i64(self.motion.opened_at)?;
        self.pending_emergency.write(w)?;
        w.put(&self.anchor_authority)?;
        w.u64(self.appeals)
    }
}

/// Member roles (bits).
pub mod roles {
    /// Votes on proposals.
    pub const VOTER: u8 = 1;
    /// Makes proposals.
    pub const PROPOSER: u8 = 2;
    /// Rules on appeals.
    pub const REVIEWER: u8 = 4;
    /// Every role bit.
    pub const ALL: u8 = VOTER | PROPOSER | REVIEWER;
}

/// A council member's register entry: the only source of a vote's weight. PDA
/// `["member", governance, key]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Member {
    /// Bump of its address.
    pub bump: u8,
    /// Active (removed members stay, inactive, so their history is kept).
    pub active: bool,
    /// Role bits ([`roles`]).
    pub roles: u8,
    /// Voting weight (1–[`MAX_WEIGHT`] while active).
    pub weight: u32,
    /// The governance.
    pub governance: Key,
    /// The member's key.
    pub key: Key,
    /// When the member was (last) added; proposals made before then are not theirs to vote on.
    pub added_at: i64,
}

impl AccountLayout for Member {
    const KIND: AccountKind = AccountKind::Member;
    const LEN: usize = 2 + 3 + 4 + 32 + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            active: r.bool()?,
            roles: r.u8()?,
            weight: r.u32()?,
            governance: r.key()?,
            key: r.key()?,
            added_at: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.bool(self.active)?;
        w.u8(self.roles)?;
        w.u32(self.weight)?;
        w.put(&self.governance)?;
        w.put(&self.key)?;
        w.i64(self.added_at)
    }
}

/// What a proposal changes.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum ProposalKind {
    /// Payload: new constitution hash (32), new version (u64).
    UpdateConstitution = 1,
    /// Payload: policy hash (32), active (1 byte: 1 activate, 0 deactivate).
    SetPolicy = 2,
    /// Payload: [`Params`].
    SetParams = 3,
    /// Payload: member key (32), weight (u32; 0 removes), roles (1 byte).
    SetMember = 4,
    /// Payload: the new anchor authority's key (32).
    SetAnchorAuthority = 5,
}

impl ProposalKind {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            1 => Self::UpdateConstitution,
            2 => Self::SetPolicy,
            3 => Self::SetParams,
            4 => Self::SetMember,
            5 => Self::SetAnchorAuthority,
            _ => return Err(QgError::InvalidInstruction),
        })
    }
}

/// Where a proposal is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum ProposalState {
    /// Open for votes.
    Voting = 1,
    /// Passed; executable once the timelock expires.
    Succeeded = 2,
    /// Did not pass.
    Defeated = 3,
    /// Applied.
    Executed = 4,
    /// Withdrawn by its proposer.
    Cancelled = 5,
    /// Stopped by the emergency set.
    Vetoed = 6,
}

impl ProposalState {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            1 => Self::Voting,
            2 => Self::Succeeded,
            3 => Self::Defeated,
            4 => Self::Executed,
            5 => Self::Cancelled,
            6 => Self::Vetoed,
            _ => return Err(QgError::WrongAccountData),
        })
    }
}

/// A proposal with its tally. The voting rules and the council's weight are copied in when it is made, so
/// later changes cannot move its goalposts. PDA `["proposal", governance, id]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Proposal {
    /// Bump of its address.
    pub bump: u8,
    /// Its state.
    pub state: ProposalState,
    /// What it changes.
    pub kind: ProposalKind,
    /// Its number within the governance.
    pub id: u64,
    /// The governance.
    pub governance: Key,
    /// Who proposed it.
    pub proposer: Key,
    /// What exactly it changes ([`ProposalKind`] says how to read it; unused bytes are zero).
    pub payload: [u8; PAYLOAD_LEN],
    /// When it was made.
    pub created_at: i64,
    /// When voting closes.
    pub voting_ends_at: i64,
    /// When it may be executed (set when it passes).
    pub executable_at: i64,
    /// Weight voting yes.
    pub yes: u64,
    /// Weight voting no.
    pub no: u64,
    /// Weight abstaining (counts towards quorum only).
    pub abstain: u64,
    /// Number of votes.
    pub voters: u32,
    /// The council's total weight when it was made.
    pub weight_snapshot: u64,
    /// The approval threshold when it was made.
    pub threshold_bps: u16,
    /// The quorum when it was made.
    pub quorum_bps: u16,
    /// The timelock when it was made.
    pub timelock_s: i64,
}

impl AccountLayout for Proposal {
    const KIND: AccountKind = AccountKind::Proposal;
    const LEN: usize = 2 + 3 + 8 + 32 + 32 + PAYLOAD_LEN + 8 * 3 + 8 * 3 + 4 + 8 + 2 + 2 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        let bump = r.u8()?;
        let state = ProposalState::from_u8(r.u8()?)?;
        let kind = ProposalKind::from_u8(r.u8()?).map_err(|_| QgError::WrongAccountData)?;
        let id = r.u64()?;
        let governance = r.key()?;
        let proposer = r.key()?;
        let mut payload = [0u8; PAYLOAD_LEN];
        payload.copy_from_slice(r.take(PAYLOAD_LEN)?);
        Ok(Self {
            bump,
            state,
            kind,
            id,
            governance,
            proposer,
            payload,
            created_at: r.i64()?,
            voting_ends_at: r.i64()?,
            executable_at: r.i64()?,
            yes: r.u64()?,
            no: r.u64()?,
            abstain: r.u64()?,
            voters: r.u32()?,
            weight_snapshot: r.u64()?,
            threshold_bps: r.u16()?,
            quorum_bps: r.u16()?,
            timelock_s: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.u8(self.state as u8)?;
        w.u8(self.kind as u8)?;
        w.u64(self.id)?;
        w.put(&self.governance)?;
        w.put(&self.proposer)?;
        w.put(&self.payload)?;
        w.i64(self.created_at)?;
        w.i64(self.voting_ends_at)?;
        w.i64(self.executable_at)?;
        w.u64(self.yes)?;
        w.u64(self.no)?;
        w.u64(self.abstain)?;
        w.u32(self.voters)?;
        w.u64(self.weight_snapshot)?;
        w.u16(self.threshold_bps)?;
        w.u16(self.quorum_bps)?;
        w.i64(self.timelock_s)
    }
}

/// A vote's choice.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum Choice {
    /// Against.
    No = 0,
    /// For.
    Yes = 1,
    /// Present, neither for nor against.
    Abstain = 2,
}

impl Choice {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            0 => Self::No,
            1 => Self::Yes,
            2 => Self::Abstain,
            _ => return Err(QgError::InvalidInstruction),
        })
    }
}

/// One member's vote on one proposal; its existence is what stops a second vote. PDA
/// `["vote", proposal, member key]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct VoteRecord {
    /// Bump of its address.
    pub bump: u8,
    /// The choice.
    pub choice: Choice,
    /// The weight counted, from the member register.
    pub weight: u32,
    /// The proposal.
    pub proposal: Key,
    /// The voter.
    pub voter: Key,
    /// When.
    pub cast_at: i64,
}

impl AccountLayout for VoteRecord {
    const KIND: AccountKind = AccountKind::Vote;
    const LEN: usize = 2 + 2 + 4 + 32 + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            choice: Choice::from_u8(r.u8()?).map_err(|_| QgError::WrongAccountData)?,
            weight: r.u32()?,
            proposal: r.key()?,
            voter: r.key()?,
            cast_at: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.u8(self.choice as u8)?;
        w.u32(self.weight)?;
        w.put(&self.proposal)?;
        w.put(&self.voter)?;
        w.i64(self.cast_at)
    }
}

/// Where an appeal is.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
#[repr(u8)]
pub enum AppealStatus {
    /// Waiting for a reviewer.
    Pending = 1,
    /// The decision stands.
    Upheld = 2,
    /// The decision is overturned.
    Overturned = 3,
}

impl AppealStatus {
    /// From its byte.
    pub fn from_u8(v: u8) -> Result<Self, QgError> {
        Ok(match v {
            1 => Self::Pending,
            2 => Self::Upheld,
            3 => Self::Overturned,
            _ => return Err(QgError::WrongAccountData),
        })
    }
}

/// An appeal of one ACGS decision (one per decision). PDA `["appeal", governance, decision hash]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Appeal {
    /// Bump of its address.
    pub bump: u8,
    /// Where it is.
    pub status: AppealStatus,
    /// The governance.
    pub governance: Key,
    /// SHA-256 of the appealed decision's id.
    pub decision_hash: Key,
    /// Who appealed.
    pub appellant: Key,
    /// SHA-256 of the appellant's statement.
    pub reason_hash: Key,
    /// When.
    pub submitted_at: i64,
    /// Who ruled (zero until then).
    pub reviewer: Key,
    /// SHA-256 of the ruling's text (zero until then).
    pub ruling_hash: Key,
    /// When it was ruled on (0 until then).
    pub ruled_at: i64,
}

impl AccountLayout for Appeal {
    const KIND: AccountKind = AccountKind::Appeal;
    const LEN: usize = 2 + 2 + 32 * 4 + 8 + 32 + 32 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            status: AppealStatus::from_u8(r.u8()?)?,
            governance: r.key()?,
            decision_hash: r.key()?,
            appellant: r.key()?,
            reason_hash: r.key()?,
            submitted_at: r.i64()?,
            reviewer: r.key()?,
            ruling_hash: r.key()?,
            ruled_at: r.i64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.u8(self.status as u8)?;
        w.put(&self.governance)?;
        w.put(&self.decision_hash)?;
        w.put(&self.appellant)?;
        w.put(&self.reason_hash)?;
        w.i64(self.submitted_at)?;
        w.put(&self.reviewer)?;
        w.put(&self.ruling_hash)?;
        w.i64(self.ruled_at)
    }
}

/// The latest anchored checkpoint of the off-chain audit log. PDA `["anchor", governance]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Anchor {
    /// Bump of its address.
    pub bump: u8,
    /// The governance.
    pub governance: Key,
    /// The log's tree size at the checkpoint (never decreases).
    pub tree_size: u64,
    /// The log's Merkle root at that size.
    pub root: Key,
    /// The checkpoint's own time (unix seconds, as signed off-chain).
    pub checkpoint_time: i64,
    /// When it was anchored (chain clock).
    pub anchored_at: i64,
    /// How many anchors were made.
    pub anchors: u64,
}

impl AccountLayout for Anchor {
    const KIND: AccountKind = AccountKind::Anchor;
    const LEN: usize = 2 + 1 + 32 + 8 + 32 + 8 + 8 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            governance: r.key()?,
            tree_size: r.u64()?,
            root: r.key()?,
            checkpoint_time: r.i64()?,
            anchored_at: r.i64()?,
            anchors: r.u64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.put(&self.governance)?;
        w.u64(self.tree_size)?;
        w.put(&self.root)?;
        w.i64(self.checkpoint_time)?;
        w.i64(self.anchored_at)?;
        w.u64(self.anchors)
    }
}

/// Whether one policy (by the hash of its text) is active under this governance. PDA
/// `["policy", governance, policy hash]`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "bpf"), derive(Debug))]
pub struct Policy {
    /// Bump of its address.
    pub bump: u8,
    /// Active.
    pub active: bool,
    /// The governance.
    pub governance: Key,
    /// SHA-256 of the policy's text.
    pub policy_hash: Key,
    /// When it last changed.
    pub changed_at: i64,
    /// The proposal that last changed it.
    pub proposal_id: u64,
}

impl AccountLayout for Policy {
    const KIND: AccountKind = AccountKind::Policy;
    const LEN: usize = 2 + 2 + 32 + 32 + 8 + 8;

    fn read_fields(r: &mut Reader<'_>) -> Result<Self, QgError> {
        Ok(Self {
            bump: r.u8()?,
            active: r.bool()?,
            governance: r.key()?,
            policy_hash: r.key()?,
            changed_at: r.i64()?,
            proposal_id: r.u64()?,
        })
    }

    fn write_fields(&self, w: &mut Writer<'_>) -> Result<(), QgError> {
        w.u8(self.bump)?;
        w.bool(self.active)?;
        w.put(&self.governance)?;
        w.put(&self.policy_hash)?;
        w.i64(self.changed_at)?;
        w.u64(self.proposal_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        [b; 32]
    }

    fn governance() -> Governance {
        let mut emergency = KeySet::EMPTY;
        emergency.threshold = 2;
        emergency.count = 3;
        emergency.keys[0] = key(1);
        emergency.keys[1] = key(2);
        emergency.keys[2] = key(3);
        Governance {
            bump: 254,
            setup_open: true,
            halted: false,
            creator: key(9),
            constitution_hash: key(7),
            constitution_version: 3,
            params: Params {
                approval_threshold_bps: 6000,
                quorum_bps: 5000,
                voting_period_s: 3600,
                timelock_s: 60,
            },
            next_proposal_id: 1,
            member_count: 2,
            total_weight: 30,
            emergency,
            halt_reason: [0; 32],
            halted_since: 0,
            motion: Motion {
                kind: MotionKind::Halt,
                payload: key(5),
                approvals: 0b101,
                opened_at: 1_700_000_000,
            },
            pending_emergency: KeySet::EMPTY,
            anchor_authority: key(8),
            appeals: 4,
        }
    }

    #[test]
    fn every_account_round_trips_and_has_its_documented_size() {
        let g = governance();
        let mut buf = [0u8; Governance::LEN];
        g.encode(&mut buf).unwrap();
        assert_eq!(Governance::decode(&buf).unwrap(), g);
        assert_eq!(Governance::LEN, 691);
        assert_eq!(Member::LEN, 81);
        assert_eq!(Proposal::LEN, 213);
        assert_eq!(VoteRecord::LEN, 80);
        assert_eq!(Appeal::LEN, 212);
        assert_eq!(Anchor::LEN, 99);
        assert_eq!(Policy::LEN, 84);

        let p = Proposal {
            bump: 1,
            state: ProposalState::Succeeded,
            kind: ProposalKind::SetMember,
            id: 12,
            governance: key(1),
            proposer: key(2),
            payload: [3; PAYLOAD_LEN],
            created_at: 10,
            voting_ends_at: 20,
            executable_at: 30,
            yes: 5,
            no: 1,
            abstain: 2,
            voters: 3,
            weight_snapshot: 10,
            threshold_bps: 5001,
            quorum_bps: 2500,
            timelock_s: 7,
        };
        let mut buf = [0u8; Proposal::LEN];
        p.encode(&mut buf).unwrap();
        assert_eq!(Proposal::decode(&buf).unwrap(), p);
    }

    #[test]
    fn one_kind_is_never_read_as_another() {
        let m = Member {
            bump: 1,
            active: true,
            roles: roles::ALL,
            weight: 10,
            governance: key(1),
            key: key(2),
            added_at: 5,
        };
        let mut buf = [0u8; Member::LEN];
        m.encode(&mut buf).unwrap();
        assert_eq!(Member::decode(&buf).unwrap(), m);
        // Same size, other kind tag; wrong version; wrong size; a flag that is not 0 or 1.
        let mut other = buf;
        other[0] = AccountKind::Vote as u8;
        assert_eq!(Member::decode(&other), Err(QgError::WrongAccountData));
        let mut other = buf;
        other[1] = 2;
        assert_eq!(Member::decode(&other), Err(QgError::WrongAccountData));
        assert_eq!(Member::decode(&buf[..80]), Err(QgError::WrongAccountData));
        let mut other = buf;
        other[3] = 2;
        assert_eq!(Member::decode(&other), Err(QgError::WrongAccountData));
        // Encoding into a buffer of the wrong size is refused, not truncated.
        assert_eq!(m.encode(&mut [0u8; 90]), Err(QgError::WrongAccountData));
    }

    #[test]
    fn key_sets_must_be_well_formed() {
        let g = governance();
        assert!(g.emergency.validate().is_ok());
        assert_eq!(g.emergency.index_of(&key(3)), Some(2));
        assert_eq!(g.emergency.index_of(&key(4)), None);
        let mut bad = g.emergency;
        bad.threshold = 4;
        assert!(bad.validate().is_err(), "M > N");
        let mut bad = g.emergency;
        bad.threshold = 0;
        assert!(bad.validate().is_err(), "M = 0");
        let mut bad = g.emergency;
        bad.keys[2] = key(1);
        assert!(bad.validate().is_err(), "duplicate key");
        let mut bad = g.emergency;
        bad.keys[5] = key(6);
        assert!(bad.validate().is_err(), "a key beyond N");
        let mut bad = g.emergency;
        bad.keys[1] = [0; 32];
        assert!(bad.validate().is_err(), "a zero key within N");
    }

    #[test]
    fn params_are_range_checked() {
        let ok = governance().params;
        assert!(ok.validate().is_ok());
        for bad in [
            Params {
                approval_threshold_bps: 0,
                ..ok
            },
            Params {
                quorum_bps: 10_001,
                ..ok
            },
            Params {
                voting_period_s: 0,
                ..ok
            },
            Params { timelock_s: -1, ..ok },
            Params {
                timelock_s: 400 * 86_400,
                ..ok
            },
        ] {
            assert_eq!(bad.validate(), Err(QgError::InvalidInstruction));
        }
    }
}
