package templates

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestFormFieldWiring checks that a field's hint and error are tied to its control, so a screen
// reader reads them with it, and that the rule text comes from the view model.
func TestFormFieldWiring(t *testing.T) {
	vm := AuthVM{Token: "t", PasswordMinLen: 15, PasswordRule: "At least 15 characters, and not easy to guess", Errors: FieldErrors{"password": "password is too short"}}
	var b bytes.Buffer
	if err := SetupPage(vm).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id, describedBy, invalid string
	}{
		{"password", "hint-password err-password", "true"},
		{"email", "", ""},
	}
	for _, tt := range tests {
		in := doc.Find("#" + tt.id)
		if got := doc.Find(`label[for="` + tt.id + `"]`).Length(); got != 1 {
			t.Errorf("%s: %d labels", tt.id, got)
		}
		if got := in.AttrOr("aria-describedby", ""); got != tt.describedBy {
			t.Errorf("%s: aria-describedby %q, want %q", tt.id, got, tt.describedBy)
		}
		if got := in.AttrOr("aria-invalid", ""); got != tt.invalid {
			t.Errorf("%s: aria-invalid %q, want %q", tt.id, got, tt.invalid)
		}
		for _, ref := range strings.Fields(tt.describedBy) {
			if doc.Find("#"+ref).Length() != 1 {
				t.Errorf("%s: aria-describedby names %q, which is not on the page", tt.id, ref)
			}
		}
	}
	if got := doc.Find("#err-password").Text(); got != "password is too short" {
		t.Errorf("error text %q", got)
	}
	if got := doc.Find("#hint-password").Text(); !strings.HasPrefix(got, "At least 15 characters") {
		t.Errorf("hint %q does not state the minimum from the view model", got)
	}
}
