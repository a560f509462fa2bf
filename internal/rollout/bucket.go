package rollout

import "github.com/cespare/xxhash/v2"

// Bucket places a user in one of BucketCount buckets for a rollout's salt:
//
//	bucket = XXH64(salt + ":" + userID, seed 0) mod 10000
//
// XXH64 mixes well (unlike CRC-32 or a plain FNV, whose outputs for two salts are measurably
// correlated), is fast, and has implementations in every common language, so a service elsewhere
// can reproduce every decision (docs/rollout.md; testdata/buckets.csv has vectors). A user is in
// the percentage p when bucket < p × 100, so widening never removes anyone.
func Bucket(salt, userID string) int {
	return int(hashUser(salt, userID) % BucketCount)
}

// hashUser is the 64-bit hash behind Bucket. It streams the parts, so it allocates nothing.
func hashUser(salt, userID string) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(salt)
	d.WriteString(":")
	d.WriteString(userID)
	return d.Sum64()
}
