// Package keyshare owns accounts and their keys, the signed chains, their
// verification, and the access state built from verified chains: which
// accounts may decrypt which record, and by which chain entry. It also
// wraps and unwraps record keys.
//
// A Repo ties one repository folder together: the store (blocks, pins),
// the account key files, chain heads and the persisted access index.
// keyshare knows nothing of networks or HTTP.
package keyshare
