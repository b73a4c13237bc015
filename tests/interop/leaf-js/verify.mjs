// An independent verifier of a Keiko passport export (keiko.passport.export, versions 1
// to 3), sharing no code with Keiko: reads the export on stdin, writes one verdict per
// entry on stdout (JSON). For each entry it
//   1. canonicalizes the statement (RFC 8785, `canonicalize`) and checks its sha256
//      against `statement_sha256`, and the Ed25519 signature (Node's crypto) over it;
//   2. recomputes the leaf in the entry's `leaf_encoding` (versions 1 and 2: keiko.leaf.v1):
//        keiko.leaf.v1 = poseidonHashMany([short string, H, S, K as 128-bit big-endian
//                        chunks])  (@scure/starknet)
//        keiko.leaf.v2 = sha256("keiko.leaf.v2" || H || S || K) mod 2**250
//      and compares it with the entry's `leaf` when stated;
//   3. walks the keiko.merkle.v1 proof (positional poseidonHash pairs, bit k of the index
//      says the side at level k) and requires the export's root.
// The chain itself is not read here: the Python verifier checks the root on chain.
import { createHash, createPublicKey, verify as edVerify } from "node:crypto";
import { readFileSync } from "node:fs";
import { poseidonHash, poseidonHashMany } from "@scure/starknet";
import canonicalize from "canonicalize";

const V1 = "keiko.leaf.v1";
const V2 = "keiko.leaf.v2";
const MASK_250 = (1n << 250n) - 1n;

const sha256 = (bytes) => createHash("sha256").update(bytes).digest();
const big = (bytes) => BigInt("0x" + (Buffer.from(bytes).toString("hex") || "0"));
const hex = (n) => "0x" + n.toString(16);

function chunks128(bytes) {
  const out = [];
  for (let i = 0; i < bytes.length; i += 16) out.push(big(bytes.subarray(i, i + 16)));
  return out;
}

function leafOf(encoding, h, s, k) {
  if (encoding === V1) {
    return poseidonHashMany([big(Buffer.from(V1, "ascii")), ...chunks128(Buffer.concat([h, s, k]))]);
  }
  if (encoding === V2) {
    const leaf = big(sha256(Buffer.concat([Buffer.from(V2, "ascii"), h, s, k]))) & MASK_250;
    if (leaf === 0n) throw new Error("a leaf of 0 is the tree's padding");
    return leaf;
  }
  throw new Error(`unknown leaf encoding ${JSON.stringify(encoding)}`);
}

function reachesRoot(leaf, index, siblings, root) {
  if (index >= 2 ** siblings.length) return false;
  let node = leaf;
  siblings.forEach((sibling, level) => {
    node = (Math.floor(index / 2 ** level) & 1) === 0 ? poseidonHash(node, sibling) : poseidonHash(sibling, node);
  });
  return node === root;
}

function ed25519Valid(message, signature, publicKey) {
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: publicKey.toString("base64url") },
    format: "jwk",
  });
  return edVerify(null, message, key, signature);
}

function bytesOf(value, length, name) {
  if (typeof value !== "string" || !/^[0-9a-f]*$/.test(value) || value.length !== 2 * length) {
    throw new Error(`${name} must be ${length} bytes of lowercase hex`);
  }
  return Buffer.from(value, "hex");
}

function check(entry, version) {
  const problems = [];
  const encoding = version >= 3 ? entry.leaf_encoding : V1;
  let leaf = null;
  try {
    const canonical = Buffer.from(canonicalize(entry.statement), "utf8");
    const h = sha256(canonical);
    const s = bytesOf(entry.signature, 64, "signature");
    const k = bytesOf(entry.public_key, 32, "public_key");
    if (h.toString("hex") !== entry.statement_sha256) problems.push("statement hash mismatch");
    if (!ed25519Valid(canonical, s, k)) problems.push("signature invalid");
    leaf = leafOf(encoding, h, s, k);
    if (entry.leaf !== undefined && BigInt(entry.leaf) !== leaf) problems.push("leaf mismatch");
    const anchor = entry.anchor;
    if (anchor) {
      const proof = anchor.proof.map((x) => BigInt(x));
      if (!reachesRoot(leaf, anchor.leaf_index, proof, BigInt(anchor.root))) {
        problems.push("proof does not reach root");
      }
    }
  } catch (error) {
    problems.push(String(error.message || error));
  }
  return {
    entry_id: entry.entry_id ?? null,
    leaf_encoding: encoding ?? null,
    leaf: leaf === null ? null : hex(leaf),
    verdict: problems.length ? "failed" : entry.anchor ? "verified" : "unanchored",
    problems,
  };
}

const doc = JSON.parse(readFileSync(0, "utf8"));
if (doc.format !== "keiko.passport.export" || ![1, 2, 3].includes(doc.version)) {
  throw new Error(`not a passport export this verifier reads: ${doc.format} ${doc.version}`);
}
if ((doc.tree_encoding ?? "keiko.merkle.v1") !== "keiko.merkle.v1") {
  throw new Error(`unknown tree encoding ${doc.tree_encoding}`);
}
process.stdout.write(JSON.stringify(doc.entries.map((e) => check(e, doc.version))));
