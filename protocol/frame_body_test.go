package protocol

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Every frame type that carries error text cuts an over-long one on a
// character boundary before sending, and refuses an oversized body on
// both sides, with the frame's name in the error.
func TestFrameBodiesCutErrorsAndKeepLimits(t *testing.T) {
	long := strings.Repeat("é", 5000) // 10,000 bytes, over every limit
	type codec struct {
		name   string
		limit  int // of the error text
		body   int // of the whole body
		encode func(text string) ([]byte, error)
		decode func([]byte) (string, error)
	}
	for _, c := range []codec{
		{"frame", maxRequestFrameError, MaxRequestFrameSize, func(s string) ([]byte, error) {
			return EncodeRequestFrame(&RequestFrame{Kind: ReqFrameError, Error: s})
		}, func(b []byte) (string, error) {
			f, err := DecodeRequestFrame(b)
			if err != nil {
				return "", err
			}
			return f.Error, nil
		}},
		{"pair frame", maxPairError, MaxPairFrameSize, func(s string) ([]byte, error) {
			return EncodePairFrame(&PairFrame{Kind: PairFrameError, Error: s})
		}, func(b []byte) (string, error) {
			f, err := DecodePairFrame(b)
			if err != nil {
				return "", err
			}
			return f.Error, nil
		}},
		{"recovery frame", maxRecoveryFrameError, MaxRecoveryFrameSize, func(s string) ([]byte, error) {
			return EncodeRecoveryFrame(&RecoveryFrame{Kind: RecFrameError, Error: s})
		}, func(b []byte) (string, error) {
			f, err := DecodeRecoveryFrame(b)
			if err != nil {
				return "", err
			}
			return f.Error, nil
		}},
		{"emergency frame", MaxReasonLen, MaxEmergencyFrame, func(s string) ([]byte, error) {
			return EncodeEmergencyFrame(&EmergencyFrame{Kind: EmFrameError, Error: s})
		}, func(b []byte) (string, error) {
			f, err := DecodeEmergencyFrame(b)
			if err != nil {
				return "", err
			}
			return f.Error, nil
		}},
	} {
		enc, err := c.encode(long + "x")
		if err != nil {
			t.Fatalf("%s: encode a long error: %v", c.name, err)
		}
		got, err := c.decode(enc)
		if err != nil {
			t.Fatalf("%s: decode: %v", c.name, err)
		}
		if len(got) > c.limit || len(got) < c.limit-1 || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
			t.Errorf("%s: error text cut to %d bytes (limit %d), valid %v", c.name, len(got), c.limit, utf8.ValidString(got))
		}
		if _, err := c.decode(make([]byte, c.body+1)); err == nil || !strings.HasPrefix(err.Error(), c.name+": ") || !strings.Contains(err.Error(), "limit") {
			t.Errorf("%s: a body over the limit: %v, want the frame's name and its limit", c.name, err)
		}
	}
}
