package rollout

import "github.com/cespare/xxhash/v2"

// Bucket places a user in one of BucketCount buckets for a rollout's salt:
//
//	bucket = XXH64(salt + ":" + canonical(userID), seed 0) mod 10000
//
// where canonical is Canonical (trimmed, NFC). XXH64 mixes well (unlike CRC-32 or a plain FNV,
// whose outputs for two salts are measurably correlated), is fast, and has implementations in
// every common language, so a service elsewhere can reproduce every decision (docs/rollout.md;
// testdata/buckets.csv has vectors). A user is in the percentage p when bucket < p × 100, so
// widening never removes anyone.
func Bucket(salt, userID string) int {
	return int(hashUser(salt, canonical(userID)) % BucketCount)
}

// joinedMax is the longest salt:id hashed in one call from a buffer on the stack: a salt
// (43 bytes as made) and an id of MaxIDBytes fit. Anything longer streams through a Digest.
const joinedMax = 320

// hashUser is the 64-bit hash behind Bucket, of the bytes as given. It allocates nothing: the
// joined bytes are hashed in one call (about a third of a streaming Digest's cost for short ids,
// BenchmarkDecide's baselines), from the stack.
func hashUser(salt, userID string) uint64 {
	n := len(salt) + 1 + len(userID)
	if n > joinedMax {
		var d xxhash.Digest
		d.Reset()
		d.WriteString(salt)
		d.WriteString(":")
		d.WriteString(userID)
		return d.Sum64()
	}
	var buf [joinedMax]byte
	copy(buf[:], salt)
	buf[len(salt)] = ':'
	copy(buf[len(salt)+1:], userID)
	return xxhash.Sum64(buf[:n])
}
