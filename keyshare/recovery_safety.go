package keyshare

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"

	"golang.org/x/crypto/scrypt"
)

// The safety code of a recovery request (PROTOCOL.md §10, "Recovery
// requests"): nine digits both the recovering device and each contact's
// node derive from the request's ID, which the contact compares with the
// owner on the phone before approving.
//
// It is derived with scrypt rather than one hash so that grinding
// requests until one's code matches an overheard code is slow: each try
// costs a new signed request and one scrypt (N=2^14, r=8: 16 MiB, and
// tens of milliseconds of one core), so the 10⁹ tries a match takes on
// average are about a core-year and 16 MiB each, instead of the hours
// that one SHA-256 each gave (v1). The two honest sides compute it once
// per request.
const (
	// recoverySafetySalt is the scrypt salt; v2 is the scrypt derivation.
	recoverySafetySalt = "BlockMRS recovery safety code v2"
	recoverySafetyN    = 1 << 14
	recoverySafetyR    = 8
	recoverySafetyP    = 1
	// maxSafetyCodes bounds the codes remembered (the inbox holds at most
	// MaxRecoveryInbox requests, a repo recovers a handful of accounts).
	maxSafetyCodes = 4 * MaxRecoveryInbox
)

// safetyCodes remembers codes already derived, by request ID, so that
// listing an inbox or a recovery's status does not run scrypt again.
var safetyCodes = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// RecoverySafetyCode is the safety code of the recovery request whose ID
// is requestID: uint64_be(scrypt(requestID, salt, N=2^14, r=8, p=1,
// 8 bytes)) mod 10⁹, written as nine digits in three groups
// ("123-456-789").
func RecoverySafetyCode(requestID []byte) string {
	id := hex.EncodeToString(requestID)
	safetyCodes.Lock()
	code, ok := safetyCodes.m[id]
	safetyCodes.Unlock()
	if ok {
		return code
	}
	k, err := scrypt.Key(requestID, []byte(recoverySafetySalt), recoverySafetyN, recoverySafetyR, recoverySafetyP, 8)
	if err != nil {
		// Only invalid parameters fail, and these are constants.
		panic(fmt.Sprintf("keyshare: safety code scrypt: %v", err))
	}
	s := fmt.Sprintf("%09d", binary.BigEndian.Uint64(k)%1_000_000_000)
	code = s[:3] + "-" + s[3:6] + "-" + s[6:]
	safetyCodes.Lock()
	if len(safetyCodes.m) >= maxSafetyCodes {
		clear(safetyCodes.m)
	}
	safetyCodes.m[id] = code
	safetyCodes.Unlock()
	return code
}
