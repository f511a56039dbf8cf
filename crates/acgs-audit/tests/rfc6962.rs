//! Known-answer tests for RFC 6962 hashing and proofs, and agreement with an independent implementation
//! (`ct-merkle`, a dev-dependency used only as an oracle) on every size and index of small trees and on random
//! larger ones.

// Tests fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use acgs_audit::{
    Hash, ProofError, consistency_proof, empty_root, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion,
};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use proptest::prelude::*;
use sha2_oracle::Sha256 as OracleSha256;

/// The leaf data of the reference test vectors used by Certificate Transparency implementations.
fn reference_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| hex::decode(h).unwrap())
    .collect()
}

fn hashes(data: &[Vec<u8>]) -> Vec<Hash> {
    data.iter().map(|d| leaf_hash(d)).collect()
}

fn oracle(data: &[Vec<u8>]) -> MemoryBackedTree<OracleSha256, Vec<u8>> {
    let mut tree = MemoryBackedTree::new();
    for d in data {
        tree.push(d.clone());
    }
    tree
}

fn h(hex_text: &str) -> Hash {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

#[test]
fn empty_tree_and_leaf_hashing_known_answers() {
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(root(&[]), empty_root());
    // SHA-256(0x00) for the empty leaf.
    assert_eq!(
        leaf_hash(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
}

#[test]
fn reference_roots_for_sizes_1_to_8() {
    let expected = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let leaves = hashes(&reference_leaves());
    for (n, want) in expected.iter().enumerate() {
        assert_eq!(hex::encode(root(&leaves[..=n])), *want, "root of size {}", n + 1);
    }
}

#[test]
fn reference_inclusion_and_consistency_proofs() {
    let leaves = hashes(&reference_leaves());
    // Leaf 0 of 8: siblings bottom-up are leaf 1, node(2,3), node(4..8).
    let proof = inclusion_proof(&leaves[..], 0, 8).unwrap();
    assert_eq!(proof.len(), 3);
    assert_eq!(proof[0], leaves[1]);
    assert_eq!(proof[1], root(&leaves[2..4]));
    assert_eq!(proof[2], root(&leaves[4..8]));
    // Consistency 3 -> 7 has the shape PROOF(3, D[7]) = [D[2], node(0,1), node(3), node(4..7)].
    let proof = consistency_proof(&leaves[..], 3, 7).unwrap();
    assert_eq!(
        proof,
        vec![leaves[2], leaves[3], root(&leaves[0..2]), root(&leaves[4..7])]
    );
    verify_consistency(3, 7, &root(&leaves[..3]), &root(&leaves[..7]), &proof).unwrap();
    // From a power of two the old root is implied: 4 -> 8 needs one hash.
    let proof = consistency_proof(&leaves[..], 4, 8).unwrap();
    assert_eq!(proof, vec![root(&leaves[4..8])]);
}

#[test]
fn every_proof_of_small_trees_matches_the_oracle() {
    let data: Vec<Vec<u8>> = (0..40u32).map(|i| format!("decision {i}").into_bytes()).collect();
    let leaves = hashes(&data);
    for size in 1..=data.len() {
        let tree = oracle(&data[..size]);
        let head = root(&leaves[..size]);
        assert_eq!(&head[..], tree.root().as_bytes().as_slice(), "root of size {size}");
        for index in 0..size {
            let ours = inclusion_proof(&leaves[..], index as u64, size as u64).unwrap();
            let theirs = tree.prove_inclusion(index);
            assert_eq!(ours.concat(), theirs.as_bytes(), "inclusion {index} of {size}");
            verify_inclusion(&leaves[index], index as u64, size as u64, &ours, &head).unwrap();
        }
        for old in 1..size {
            let ours = consistency_proof(&leaves[..], old as u64, size as u64).unwrap();
            let theirs = tree.prove_consistency(size - old);
            assert_eq!(ours.concat(), theirs.as_bytes(), "consistency {old} -> {size}");
            verify_consistency(old as u64, size as u64, &root(&leaves[..old]), &head, &ours).unwrap();
        }
    }
}

#[test]
fn edge_sizes_zero_one_and_equal() {
    let leaves = hashes(&reference_leaves());
    assert_eq!(
        inclusion_proof(&leaves[..], 0, 0),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    // Size 1: empty path, the leaf is the root.
    let proof = inclusion_proof(&leaves[..], 0, 1).unwrap();
    assert!(proof.is_empty());
    verify_inclusion(&leaves[0], 0, 1, &proof, &leaves[0]).unwrap();
    // Every tree extends the empty tree; equal sizes need equal roots and no hashes.
    assert!(consistency_proof(&leaves[..], 0, 5).unwrap().is_empty());
    verify_consistency(0, 5, &empty_root(), &root(&leaves[..5]), &[]).unwrap();
    assert!(consistency_proof(&leaves[..], 5, 5).unwrap().is_empty());
    verify_consistency(5, 5, &root(&leaves[..5]), &root(&leaves[..5]), &[]).unwrap();
    assert_eq!(
        verify_consistency(5, 5, &root(&leaves[..5]), &root(&leaves[..4]), &[]),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        consistency_proof(&leaves[..], 6, 5),
        Err(ProofError::InvalidSizes { from: 6, to: 5 })
    );
}

#[test]
fn tampered_proofs_fail() {
    let leaves = hashes(&reference_leaves());
    let head = root(&leaves[..7]);
    let proof = inclusion_proof(&leaves[..], 5, 7).unwrap();
    // Wrong leaf, index, size, root, a flipped bit, a missing or an extra hash.
    assert!(verify_inclusion(&leaves[4], 5, 7, &proof, &head).is_err());
    assert!(verify_inclusion(&leaves[5], 4, 7, &proof, &head).is_err());
    // (A proof can also fit a neighbouring size — RFC 9162 binds size and root through the signed tree head —
    // but not one whose path has another shape.)
    assert!(verify_inclusion(&leaves[5], 5, 6, &proof, &head).is_err());
    assert!(verify_inclusion(&leaves[5], 5, 7, &proof, &root(&leaves[..6])).is_err());
    let mut flipped = proof.clone();
    flipped[1][0] ^= 1;
    assert!(verify_inclusion(&leaves[5], 5, 7, &flipped, &head).is_err());
    assert!(verify_inclusion(&leaves[5], 5, 7, &proof[..proof.len() - 1], &head).is_err());
    let mut longer = proof.clone();
    longer.push(leaves[0]);
    assert!(verify_inclusion(&leaves[5], 5, 7, &longer, &head).is_err());

    let old = root(&leaves[..3]);
    let proof = consistency_proof(&leaves[..], 3, 7).unwrap();
    assert!(verify_consistency(3, 7, &old, &head, &proof).is_ok());
    assert!(verify_consistency(3, 7, &root(&leaves[..2]), &head, &proof).is_err());
    assert!(verify_consistency(3, 4, &old, &head, &proof).is_err());
    assert!(verify_consistency(2, 7, &old, &head, &proof).is_err());
    let mut flipped = proof.clone();
    flipped[0][31] ^= 0x80;
    assert!(verify_consistency(3, 7, &old, &head, &flipped).is_err());
    assert!(verify_consistency(3, 7, &old, &head, &[]).is_err());
    // A forked history (one old leaf rewritten) is not consistent.
    let mut forked = leaves.clone();
    forked[1] = leaf_hash(b"rewritten");
    let forked_proof = consistency_proof(&forked[..], 3, 7).unwrap();
    assert!(verify_consistency(3, 7, &old, &root(&forked[..7]), &forked_proof).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_trees_agree_with_the_oracle(
        data in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 1..300),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 3),
    ) {
        let size = data.len();
        let leaves = hashes(&data);
        let tree = oracle(&data);
        let head = root(&leaves);
        let oracle_root = tree.root();
        prop_assert_eq!(&head[..], oracle_root.as_bytes().as_slice());

        let index = picks[0].index(size);
        let ours = inclusion_proof(&leaves[..], index as u64, size as u64).unwrap();
        prop_assert_eq!(ours.concat(), tree.prove_inclusion(index).as_bytes().to_vec());
        prop_assert!(verify_inclusion(&leaves[index], index as u64, size as u64, &ours, &head).is_ok());

        if size > 1 {
            let old = 1 + picks[1].index(size - 1);
            let ours = consistency_proof(&leaves[..], old as u64, size as u64).unwrap();
            prop_assert_eq!(ours.concat(), tree.prove_consistency(size - old).as_bytes().to_vec());
            prop_assert!(verify_consistency(old as u64, size as u64, &root(&leaves[..old]), &head, &ours).is_ok());
            // The oracle's verifier accepts our proof as well.
            let old_tree = oracle(&data[..old]);
            let proof = ct_merkle::ConsistencyProof::<OracleSha256>::try_from_bytes(ours.concat()).unwrap();
            prop_assert!(tree.root().verify_consistency(&old_tree.root(), &proof).is_ok());
        }
    }
}
