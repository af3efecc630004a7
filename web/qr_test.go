package web

import (
	"image"
	"image/color"
	"os/exec"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/tryst-chat/tryst/internal/testenv"
)

// TestQRCodeDecodes renders qr.js's matrices and decodes them with an
// independent decoder (ZXing's port), for links of every version qr.js
// supports.
func TestQRCodeDecodes(t *testing.T) {
	node := testenv.Tool(t, "node", "nodejs")
	for _, text := range []string{
		"hi",
		"http://localhost:8080/#K7Q-MX2-P9R-TVW-4HN-C8D",
		"https://chat.example.com/#K7Q-MX2-P9R-TVW-4HN-C8D",
		"https://a-rather-long-host-name.tryst.example.org:8443/#K7Q-MX2-P9R-TVW-4HN-C8D",
		strings.Repeat("x", 150) + "é",
	} {
		out, err := exec.Command(node, "testdata/qrmatrix.mjs", text).Output()
		if err != nil {
			t.Fatalf("%q: node: %v", text, err)
		}
		rows := strings.Fields(string(out))
		const scale, quiet = 4, 4
		n := len(rows)
		img := image.NewGray(image.Rect(0, 0, (n+2*quiet)*scale, (n+2*quiet)*scale))
		for i := range img.Pix {
			img.Pix[i] = 255
		}
		for y, row := range rows {
			for x, c := range row {
				if c == '1' {
					for dy := range scale {
						for dx := range scale {
							img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{})
						}
					}
				}
			}
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
		if err != nil {
			t.Fatalf("%q (version %d): decode: %v", text, (n-17)/4, err)
		}
		if res.GetText() != text {
			t.Errorf("decoded %q, want %q", res.GetText(), text)
		}
	}
}
