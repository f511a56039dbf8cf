//! Which constitution runs: the version in force in the database. The first start records the file it was given
//! (or the embedded example) as version 1; later starts run the version in force, and a start with a file whose
//! hash differs is refused. `acgs constitution versions` lists them; `acgs constitution activate` puts a file in
//! force (until amendments do that through the council).

use std::path::Path;

use acgs_engine::Constitution;
use acgs_store::{ConstitutionStore, ConstitutionVersion, GovernanceCommit, NewConstitutionVersion, NewEvent, Store};
use anyhow::{Context, Result, bail};

/// A constitution's TOML source and where it came from.
pub struct ConstitutionSource {
    /// A file path, or the embedded example's name.
    pub name: String,
    /// The TOML text.
    pub text: String,
}

impl ConstitutionSource {
    /// The file at `path`, or the embedded example.
    pub fn read(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(path) => Ok(Self {
                name: path.display().to_string(),
                text: std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the constitution `{}`", path.display()))?,
            }),
            None => Ok(Self {
                name: crate::EXAMPLE_CONSTITUTION_NAME.to_owned(),
                text: crate::EXAMPLE_CONSTITUTION.to_owned(),
            }),
        }
    }

    /// Validate, compile and test it.
    pub fn compile(&self) -> Result<Constitution> {
        Ok(Constitution::from_toml(&self.name, &self.text)?)
    }

    fn version(&self, constitution: &Constitution, now_us: i64, actor: &str, reason: &str) -> NewConstitutionVersion {
        NewConstitutionVersion {
            hash: constitution.hash().to_hex(),
            version_label: constitution.metadata().version.clone(),
            name: constitution.metadata().name.clone(),
            source_name: self.name.clone(),
            source: self.text.clone(),
            activated_at_us: now_us,
            activated_by: actor.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// The constitution the server is to run, and its stored version: the one in force; on the first start, the
/// file (or the embedded example), recorded as version 1. A file that differs from the version in force is
/// refused, naming both hashes and how to change the constitution.
pub async fn to_run(
    store: &dyn ConstitutionStore,
    file: Option<&Path>,
    now_us: i64,
) -> Result<(Constitution, ConstitutionVersion)> {
    let Some(active) = store
        .active_constitution()
        .await
        .context("cannot read the constitution versions")?
    else {
        let source = ConstitutionSource::read(file)?;
        let constitution = source.compile()?;
        let version = source.version(&constitution, now_us, "server", "first start");
        let recorded = store
            .activate_constitution(0, &version)
            .await
            .context("cannot record the first constitution version")?;
        return Ok((constitution, recorded));
    };
    let constitution = compile_stored(&active)?;
    if let Some(path) = file {
        let given = ConstitutionSource::read(Some(path))?.compile()?;
        if given.hash() != constitution.hash() {
            bail!(
                "the constitution file `{}` (hash {}) is not the constitution in force (version {}, `{}` v{}, hash {}, \
                 activated because: {}). Start without --constitution to run the version in force, or put the file \
                 in force first: `acgs constitution activate {} --reason TEXT`",
                path.display(),
                given.hash(),
                active.number,
                active.version.name,
                active.version.version_label,
                active.version.hash,
                active.version.reason,
                path.display()
            );
        }
    }
    Ok((constitution, active))
}

/// Compile a stored version, checking that it still has the hash it was recorded with.
fn compile_stored(stored: &ConstitutionVersion) -> Result<Constitution> {
    let constitution = Constitution::from_toml(&stored.version.source_name, &stored.version.source)
        .with_context(|| format!("the stored constitution version {} does not compile", stored.number))?;
    if constitution.hash().to_hex() != stored.version.hash {
        bail!(
            "the stored constitution version {} hashes to {}, not to its recorded hash {}: the database was changed",
            stored.number,
            constitution.hash(),
            stored.version.hash
        );
    }
    Ok(constitution)
}

/// Put the constitution in `file` in force as the next version, with its audit event (`constitution.activated`,
/// naming the operator and the reason) in the same transaction. This is the operator's way around the council,
/// for constitutions without `[governance]` and for emergencies; running servers pick it up within a second.
pub async fn activate(
    store: &dyn Store,
    file: &Path,
    now_us: i64,
    actor: &str,
    reason: &str,
) -> Result<ConstitutionVersion> {
    if reason.trim().is_empty() {
        bail!("say why the constitution changes (--reason)");
    }
    let source = ConstitutionSource::read(Some(file))?;
    let constitution = source.compile()?;
    let active = store.active_constitution().await?;
    if let Some(active) = &active
        && active.version.hash == constitution.hash().to_hex()
    {
        bail!(
            "`{}` is already the constitution in force (version {}, hash {})",
            file.display(),
            active.number,
            active.version.hash
        );
    }
    let expected = active.map_or(0, |a| a.number);
    let version = source.version(&constitution, now_us, actor, reason);
    let event = acgs_audit::event::GovernanceEvent {
        action: "constitution.activated".into(),
        subject: format!("constitution/{}", expected + 1),
        actor: actor.to_owned(),
        from_state: None,
        to_state: None,
        detail: serde_json::json!({
            "hash": version.hash,
            "version_label": version.version_label,
            "previous_version": expected,
            "source_name": version.source_name,
            "reason": reason,
            "by": "acgs constitution activate",
        }),
    };
    let committed = store
        .commit_governance(&GovernanceCommit {
            writes: Vec::new(),
            expect_active: Some(expected),
            activation: Some(version),
            events: vec![NewEvent::governance(event, now_us)],
        })
        .await?;
    committed
        .activated
        .context("the store put no version in force (a bug: the commit carried one)")
}
