// Package fastx25519 is an age recipient that writes the standard
// "X25519" stanza of the age format (C2SP age, "The X25519 recipient
// type") byte for byte as filippo.io/age's X25519Recipient does, but
// computes its scalar multiplications faster when it can:
//
//   - the ephemeral share, X25519(e, basepoint), is a fixed-base
//     multiplication done with filippo.io/edwards25519's precomputed
//     tables (ScalarBaseMult, then BytesMontgomery for the u-coordinate)
//     instead of a generic Montgomery ladder: about seven times faster;
//   - for a recipient whose secret key the writer holds (ForIdentity: a
//     record key it has just made), the shared secret X25519(e, K) with
//     K = [k]B is [e·k mod l]B, again one fixed-base multiplication
//     instead of a ladder. Clamped scalars multiply B exactly as integers,
//     and B has prime order l, so reducing the product mod l changes
//     nothing.
//
// Everything else is age's recipe, unchanged: the shared secret, when
// the writer does not know the recipient's secret, is
// curve25519.X25519(e, K), which refuses an all-zero result (a low-order
// K) as age does; the wrapping key is HKDF-SHA-256 of the shared secret
// with salt share||K and info "age-encryption.org/v1/X25519"; the file key
// is sealed with ChaCha20-Poly1305 under a zero nonce (the key is used
// once). Any age implementation's X25519 identity decrypts the result;
// the tests check that against filippo.io/age and the stock age tool, and
// check both multiplications against curve25519.X25519 for random scalars.
//
// Keys are read from their age encodings (bech32.go: "age1..." and
// "AGE-SECRET-KEY-1..."), so callers keep using age's types.
package fastx25519
