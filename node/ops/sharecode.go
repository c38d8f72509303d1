package ops

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	qrcode "github.com/skip2/go-qrcode"
)

// ShareQR is the result of ShareCodeQR: a share code and its QR code.
type ShareQR struct {
	// Text is the share code, "ADDRESS ACCOUNT_ID" (Identity.ShareCode).
	Text string
	// Code is Text as a QR code (medium error correction), which the
	// command line prints as text and the API as a PNG image.
	Code *qrcode.QRCode
}

// ShareQRLevel is the error correction of share-code QR codes: medium
// (15% of the code may be lost), which keeps a share code of a long
// address readable on a phone's screen.
const ShareQRLevel = qrcode.Medium

// ShareCodeQR makes the QR code of the share code of the account args
// names (the default one if none), as ID computes it; h is the running
// node (nil: ErrNoNode, for the share code needs its addresses).
func ShareCodeQR(ctx context.Context, repo AccountLister, h host.Host, args IDArgs) (ShareQR, error) {
	if h == nil {
		return ShareQR{}, fmt.Errorf("share code: %w", ErrNoNode)
	}
	id, err := ID(ctx, repo, h, args)
	if err != nil {
		return ShareQR{}, err
	}
	if id.Account == nil {
		return ShareQR{}, fmt.Errorf("share code: this repo has no account of its own: %w", ErrNotFound)
	}
	if id.ShareCode == "" {
		return ShareQR{}, fmt.Errorf("share code: the node listens on no address: %w", ErrNoNode)
	}
	code, err := qrcode.New(id.ShareCode, ShareQRLevel)
	if err != nil {
		return ShareQR{}, fmt.Errorf("share code: QR code: %w", err)
	}
	return ShareQR{Text: id.ShareCode, Code: code}, nil
}
