package templates

import (
	"strconv"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// QRCode is a QR code ready to draw as inline SVG: Size modules square, quiet zone included, and
// Path, SVG path data that fills the dark modules. Drawn inline, it needs no image request and no
// data: URL, and stays sharp at any zoom.
type QRCode struct {
	Size int
	Path string
}

// qrQuietZone is the blank border, in modules, that scanners need around the code.
const qrQuietZone = 4

// NewQRCode encodes text (an otpauth:// URL) as a QR code with medium error correction.
func NewQRCode(text string) (QRCode, error) {
	q, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return QRCode{}, err
	}
	var w bitmapWriter
	if err := q.Save(&w); err != nil {
		return QRCode{}, err
	}
	var p strings.Builder
	for y, row := range w.bitmap {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			// One rectangle per horizontal run of dark modules.
			p.WriteString("M" + strconv.Itoa(x+qrQuietZone) + " " + strconv.Itoa(y+qrQuietZone) + "h" + strconv.Itoa(run) + "v1h-" + strconv.Itoa(run) + "z")
			x += run
		}
	}
	return QRCode{Size: len(w.bitmap) + 2*qrQuietZone, Path: p.String()}, nil
}

// bitmapWriter receives the encoded matrix from go-qrcode.
type bitmapWriter struct{ bitmap [][]bool }

func (w *bitmapWriter) Write(m qrcode.Matrix) error {
	w.bitmap = m.Bitmap()
	return nil
}

func (w *bitmapWriter) Close() error { return nil }
