-- Appending a batch to the audit log in one round trip. The function takes the sequencer lock (the advisory lock
-- every writer takes; its key is the first argument), then inserts the batch's entries, tree nodes and
-- decision-index rows if the log still ends at `arg_expected_size`, and returns whether it did. Run as a statement
-- of its own it is a transaction of its own: it commits, and releases the lock, when it returns. Each statement in
-- it reads a snapshot taken after the lock was granted, so it sees every earlier writer's commit.
CREATE FUNCTION acgs_append_batch(
    arg_lock_key bigint,
    arg_expected_size bigint,
    arg_entry_seq bigint[], arg_entry_kind text[], arg_entry_recorded_at_us bigint[],
    arg_entry_leaf_hash bytea[], arg_entry_event text[],
    arg_node_level smallint[], arg_node_idx bigint[], arg_node_hash bytea[],
    arg_decision_seq bigint[], arg_decision_id text[], arg_decision_recorded_at_us bigint[],
    arg_principal_type text[], arg_principal_id text[], arg_action text[], arg_resource_type text[],
    arg_resource_id text[], arg_outcome text[], arg_effective_outcome text[], arg_shadow boolean[],
    arg_constitutional_hash text[], arg_constitution_version text[], arg_evaluated_in_us bigint[]
) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(arg_lock_key);
    IF (SELECT COALESCE(MAX(seq), 0) FROM audit_log) <> arg_expected_size THEN
        RETURN false;
    END IF;
    INSERT INTO audit_log (seq, kind, recorded_at_us, leaf_hash, event)
        SELECT * FROM UNNEST(arg_entry_seq, arg_entry_kind, arg_entry_recorded_at_us, arg_entry_leaf_hash,
                             arg_entry_event);
    INSERT INTO audit_nodes (level, idx, hash)
        SELECT * FROM UNNEST(arg_node_level, arg_node_idx, arg_node_hash);
    INSERT INTO decisions (seq, decision_id, recorded_at_us, principal_type, principal_id, action, resource_type,
                           resource_id, outcome, effective_outcome, shadow, constitutional_hash,
                           constitution_version, evaluated_in_us)
        SELECT * FROM UNNEST(arg_decision_seq, arg_decision_id, arg_decision_recorded_at_us, arg_principal_type,
                             arg_principal_id, arg_action, arg_resource_type, arg_resource_id, arg_outcome,
                             arg_effective_outcome, arg_shadow, arg_constitutional_hash,
                             arg_constitution_version, arg_evaluated_in_us);
    RETURN true;
END;
$$;
