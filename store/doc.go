// Package store is BlockMRS's content-addressed storage layer.
//
// It owns age encryption of records, chunking them into IPFS blocks with
// the IPIP-499 "unixfs-v1-2025" profile, the persistent blockstore
// (flatfs), a pebble datastore for metadata, recursive pins, garbage
// collection and CARv1 export and import.
//
// On-disk layout under the directory given to [Open]:
//
//	blocks/     flatfs, sharded next-to-last/2 like go-ipfs/kubo
//	datastore/  pebble; keys under /store/ are reserved for this package
//	tmp/        staging files for CAR imports (emptied on Open)
//	reserve     a quarter of the free-space reserve, deleted at Open
//	            when the disk is nearly full (see space.go)
//
// Durability: an operation that returned without error survives a crash.
// Blocks are written without a per-block fsync and made durable with one
// flush before the operation reports success (syncfs(2) on Linux for more
// than a handful of blocks, otherwise fsync of each written file and its
// directories); metadata writes to pebble are synchronous (WAL fsync).
//
// Disk space: writes leave a reserve (64 MiB by default) free for pebble
// and fail with a *SpaceError otherwise; a failed add deletes its blocks;
// an interrupted one leaves a marker that [Store.Interrupted] reports and
// [Store.GC] clears.
//
// The package knows nothing about networking or access control and
// imports no other BlockMRS package.
package store
