//! The Merkle tree hash of RFC 6962 (Certificate Transparency, §2.1) over
//! a list of leaves, the shape a checkpoint uses to commit to every
//! stream's head at once:
//!
//! ```text
//! MTH({})      = SHA-256()
//! MTH({d})     = SHA-256(0x00 || d)
//! MTH(D[0:n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   k: the largest power of two < n
//! ```
//!
//! The 0x00 / 0x01 prefixes keep leaves and inner nodes apart, so no list
//! of leaves has the root of another. The same tree admits short inclusion
//! proofs (a leaf and log₂ n hashes), should a single family's head ever
//! need proving without the whole list.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The hash of one leaf's bytes.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root over leaves already hashed with [`leaf_hash`], in order.
/// Built level by level, pairing neighbours and carrying an odd last node
/// up unchanged — the same tree as RFC 6962's split at the largest power
/// of two.
pub fn root(mut level: Vec<Hash>) -> Hash {
    if level.is_empty() {
        return Sha256::digest([]).into();
    }
    while level.len() > 1 {
        let next: Vec<Hash> = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node_hash(l, r),
                [single] => *single,
                _ => unreachable!("chunks of two"),
            })
            .collect();
        level = next;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference test vectors of RFC 6962's implementations (the
    /// certificate-transparency repositories): eight leaves and the root
    /// of every prefix of them.
    #[test]
    fn roots_match_the_rfc_6962_reference_vectors() {
        let leaves: Vec<Vec<u8>> = [
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
        .collect();
        let roots = [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, expected) in roots.iter().enumerate() {
            let hashed = leaves[..n].iter().map(|l| leaf_hash(l)).collect();
            assert_eq!(hex::encode(root(hashed)), *expected, "{n} leaves");
        }
    }

    #[test]
    fn order_and_every_leaf_matter() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let c = leaf_hash(b"c");
        let abc = root(vec![a, b, c]);
        assert_ne!(abc, root(vec![b, a, c]));
        assert_ne!(abc, root(vec![a, b]));
        assert_ne!(abc, root(vec![a, b, c, c]));
        // A leaf is never mistaken for a node.
        assert_ne!(root(vec![a, b]), leaf_hash(&[a, b].concat()));
    }
}
