package protocol

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Recovery frames: the protocol /blockmrs/recovery/1.0.0 (PROTOCOL.md
// §10, "Recovery requests") that carries a recovery request (§5.15) from
// the recovering node to its contacts' nodes and brings their responses
// back. One stream carries one exchange: the recovering node writes a
// request or a poll frame, the contact's node one ok or error reply.
const (
	RecoveryFrameVersion = 1

	RecFrameRequest = "request" // recovering → contact: Request, the encoded signed request
	RecFramePoll    = "poll"    // recovering → contact: ID, the request's ID
	RecFrameOK      = "ok"      // reply: taken; to a poll, Responses are the approvals held
	RecFrameError   = "error"   // reply: refused, Error says why

	// MaxRecoveryFrameSize bounds one encoded frame: a poll's reply
	// carries at most MaxRecoveryContacts responses.
	MaxRecoveryFrameSize  = MaxRecoveryContacts*MaxRecoveryResponse + 4<<10
	maxRecoveryFrameError = 256
)

// RecoveryFrame is one message of the recovery protocol, a canonical
// DAG-CBOR map.
type RecoveryFrame struct {
	Version   int64    `cbor:"v"`
	Kind      string   `cbor:"kind"`
	Request   []byte   `cbor:"request,omitempty"`
	ID        []byte   `cbor:"id,omitempty"`
	Responses [][]byte `cbor:"responses,omitempty"`
	Error     string   `cbor:"error,omitempty"`
}

func (f *RecoveryFrame) validate() error {
	if f.Version != RecoveryFrameVersion {
		return fmt.Errorf("recovery frame: unsupported version %d", f.Version)
	}
	switch f.Kind {
	case RecFrameRequest:
		if len(f.Request) == 0 || len(f.Request) > MaxRecoveryRequest {
			return fmt.Errorf("recovery frame: a request of 1 to %d bytes is due", MaxRecoveryRequest)
		}
	case RecFramePoll:
		if len(f.ID) != 32 {
			return errors.New("recovery frame: a poll names one request ID (32 bytes)")
		}
	case RecFrameOK, RecFrameError:
	default:
		return fmt.Errorf("recovery frame: unknown kind %q", truncate(f.Kind))
	}
	if len(f.Responses) > MaxRecoveryContacts {
		return fmt.Errorf("recovery frame: more than %d responses", MaxRecoveryContacts)
	}
	for _, r := range f.Responses {
		if len(r) == 0 || len(r) > MaxRecoveryResponse {
			return fmt.Errorf("recovery frame: a response must be 1 to %d bytes", MaxRecoveryResponse)
		}
	}
	if len(f.Error) > maxRecoveryFrameError || !utf8.ValidString(f.Error) {
		return errors.New("recovery frame: error text too long or not UTF-8")
	}
	return nil
}

// EncodeRecoveryFrame encodes a frame's map (without the length prefix);
// an over-long Error is cut.
func EncodeRecoveryFrame(f *RecoveryFrame) ([]byte, error) {
	f.Version = RecoveryFrameVersion
	f.Error = cutText(f.Error, maxRecoveryFrameError)
	return encodeFrame("recovery frame", f, MaxRecoveryFrameSize)
}

// DecodeRecoveryFrame decodes a frame's map strictly. The request and the
// responses it carries are decoded separately (DecodeRecoveryRequest,
// DecodeRecoveryResponse).
func DecodeRecoveryFrame(data []byte) (*RecoveryFrame, error) {
	return decodeFrame[RecoveryFrame]("recovery frame", data, MaxRecoveryFrameSize)
}
