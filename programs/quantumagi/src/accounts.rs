//! Account checks an auditor looks for, in one place: signers, writability, ownership, program-derived
//! addresses with canonical bumps, sysvar and program identities, and the creation of rent-exempt program
//! accounts (also when someone pre-funded the address to block its creation).

use pinocchio::cpi::{Seed, Signer};
use pinocchio::error::ProgramError;
use pinocchio::sysvars::clock::Clock;
use pinocchio::sysvars::rent::Rent;
use pinocchio::{AccountView, Address};
use pinocchio_system::instructions::{Allocate, Assign, CreateAccount, Transfer};

use crate::error::QgError;
use crate::state::{AccountLayout, Key};

/// The accounts of an instruction, taken in order.
pub struct AccountIter<'a> {
    accounts: &'a [AccountView],
    next: usize,
}

impl<'a> AccountIter<'a> {
    /// Over `accounts`.
    pub fn new(accounts: &'a [AccountView]) -> Self {
        Self { accounts, next: 0 }
    }

    /// The next account, or `NotEnoughAccountKeys`.
    #[inline(always)]
    pub fn account(&mut self) -> Result<&'a AccountView, ProgramError> {
        let account = self.accounts.get(self.next).ok_or(ProgramError::NotEnoughAccountKeys)?;
        self.next += 1;
        Ok(account)
    }

    /// The next account, which must sign.
    #[inline(always)]
    pub fn signer(&mut self) -> Result<&'a AccountView, ProgramError> {
        let account = self.account()?;
        require_signer(account)?;
        Ok(account)
    }

    /// The next account, which must sign and be writable (a payer).
    #[inline(always)]
    pub fn payer(&mut self) -> Result<&'a AccountView, ProgramError> {
        let account = self.signer()?;
        require_writable(account)?;
        Ok(account)
    }

    /// The next account, which must be writable.
    #[inline(always)]
    pub fn writable(&mut self) -> Result<&'a AccountView, ProgramError> {
        let account = self.account()?;
        require_writable(account)?;
        Ok(account)
    }

    /// The accounts not taken yet.
    pub fn rest(&self) -> &'a [AccountView] {
        self.accounts.get(self.next..).unwrap_or(&[])
    }
}

/// The account must have signed.
pub fn require_signer(account: &AccountView) -> Result<(), ProgramError> {
    if account.is_signer() {
        Ok(())
    } else {
        Err(ProgramError::MissingRequiredSignature)
    }
}

/// The account must be writable.
pub fn require_writable(account: &AccountView) -> Result<(), ProgramError> {
    if account.is_writable() {
        Ok(())
    } else {
        Err(ProgramError::Immutable)
    }
}

/// The account's address as bytes.
pub fn key_of(account: &AccountView) -> Key {
    account.address().to_bytes()
}

/// Read a program account of kind `T`: owned by this program, of `T`'s exact size, kind and version.
pub fn load<T: AccountLayout>(account: &AccountView, program_id: &Address) -> Result<T, ProgramError> {
    if !account.owned_by(program_id) {
        return Err(QgError::WrongOwner.into());
    }
    let data = account.try_borrow()?;
    Ok(T::decode(&data)?)
}

/// Write `value` back into its (writable, program-owned) account.
pub fn store<T: AccountLayout>(account: &AccountView, program_id: &Address, value: &T) -> Result<(), ProgramError> {
    if !account.owned_by(program_id) {
        return Err(QgError::WrongOwner.into());
    }
    require_writable(account)?;
    let mut data = account.try_borrow_mut()?;
    Ok(value.encode(&mut data)?)
}

/// The Clock sysvar's unix time.
#[inline(always)]
pub fn now(clock: &AccountView) -> Result<i64, ProgramError> {
    let clock = Clock::from_account_view(clock).map_err(|_| ProgramError::from(QgError::WrongAccount))?;
    Ok(clock.unix_timestamp)
}

/// The System program, checked.
pub fn system_program(account: &AccountView) -> Result<&AccountView, ProgramError> {
    if account.address() != &pinocchio_system::ID {
        return Err(QgError::WrongAccount.into());
    }
    Ok(account)
}

/// The canonical bump of `seeds` for this program, if `account` is at that address.
pub fn expect_pda(account: &AccountView, seeds: &[&[u8]], program_id: &Address) -> Result<u8, ProgramError> {
    let (address, bump) = Address::find_program_address(seeds, program_id);
    if account.address() != &address {
        return Err(QgError::WrongPda.into());
    }
    Ok(bump)
}

/// What creating a program account needs besides its seeds.
pub struct NewAccount<'a> {
    /// Pays the rent.
    pub payer: &'a AccountView,
    /// The account to create (its address is the PDA of the seeds).
    pub account: &'a AccountView,
    /// The Rent sysvar.
    pub rent: &'a AccountView,
    /// The System program.
    pub system: &'a AccountView,
    /// The data size.
    pub space: usize,
}

/// The most seeds, besides the bump, of this program's addresses.
const MAX_SEEDS: usize = 3;

/// Create `new.account` at the program-derived address of `seeds` (with its canonical bump, which is returned)
/// as a rent-exempt account of this program; see [`create_pda`].
pub fn create_program_account(new: &NewAccount<'_>, seeds: &[&[u8]], program_id: &Address) -> Result<u8, ProgramError> {
    if seeds.len() > MAX_SEEDS {
        return Err(QgError::WrongPda.into());
    }
    let bump = expect_pda(new.account, seeds, program_id)?;
    let bump_seed = [bump];
    let bump_ref: &[u8] = &bump_seed;
    let empty: &[u8] = &[];
    let mut signer_seeds = [
        Seed::from(empty),
        Seed::from(empty),
        Seed::from(empty),
        Seed::from(empty),
    ];
    for (slot, seed) in signer_seeds
        .iter_mut()
        .zip(seeds.iter().chain(core::iter::once(&bump_ref)))
    {
        *slot = Seed::from(*seed);
    }
    let used = signer_seeds.get(..=seeds.len()).ok_or(QgError::WrongPda)?;
    create_pda(new, used, program_id)?;
    Ok(bump)
}

/// Create `new.account` as a rent-exempt account of this program, signing for its address with `seeds` (the
/// last seed is the bump). If someone already sent lamports to the address, it is topped up, allocated and
/// assigned instead, so a pre-funded address cannot block the creation. An account that already has data or
/// another owner is refused.
pub fn create_pda(new: &NewAccount<'_>, seeds: &[Seed<'_>], program_id: &Address) -> Result<(), ProgramError> {
    require_writable(new.account)?;
    system_program(new.system)?;
    let rent = Rent::from_account_view(new.rent).map_err(|_| ProgramError::from(QgError::WrongAccount))?;
    let needed = rent.try_minimum_balance(new.space)?;
    let signer = [Signer::from(seeds)];
    let space = u64::try_from(new.space).map_err(|_| QgError::Overflow)?;
    let existing = new.account.lamports();
    if existing == 0 {
        return CreateAccount {
            from: new.payer,
            to: new.account,
            lamports: needed,
            space,
            owner: program_id,
        }
        .invoke_signed(&signer);
    }
    // Pre-funded: it must still be an empty system account.
    if !new.account.owned_by(&pinocchio_system::ID) || !new.account.is_data_empty() {
        return Err(ProgramError::AccountAlreadyInitialized);
    }
    if existing < needed {
        Transfer {
            from: new.payer,
            to: new.account,
            lamports: needed - existing,
        }
        .invoke()?;
    }
    Allocate {
        account: new.account,
        space,
    }
    .invoke_signed(&signer)?;
    Assign {
        account: new.account,
        owner: program_id,
    }
    .invoke_signed(&signer)
}
