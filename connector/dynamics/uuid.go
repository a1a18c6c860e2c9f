package dynamics

import (
	"crypto/sha1"
	"fmt"
)

// namespace is ctibridge's UUIDv5 namespace for activity ids: the UUIDv5
// of "ctibridge.activity" in RFC 9562's DNS namespace,
// b8bf244a-ad50-5728-920b-4795056e2615.
var namespace = [16]byte{
	0xb8, 0xbf, 0x24, 0x4a, 0xad, 0x50, 0x57, 0x28,
	0x92, 0x0b, 0x47, 0x95, 0x05, 0x6e, 0x26, 0x15,
}

// ActivityID is the id of the activity with idempotency key key: the same
// key is always the same row, which is how an operator finds it in Dataverse.
func ActivityID(key string) string { return uuidV5(namespace, key) }

// uuidV5 returns the name-based UUID (RFC 9562 §5.5, SHA-1) of name in
// namespace ns, in lower-case 8-4-4-4-12 form.
func uuidV5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
