package tensfer

import (
	"encoding/json"
	"testing"
)

func TestOptionalJSON(t *testing.T) {
	type doc struct {
		A Optional[string] `json:"a,omitzero"`
		B Optional[int]    `json:"b,omitzero"`
		C Optional[int]    `json:"c,omitzero"`
	}
	tests := []struct {
		in, out string
	}{
		{`{}`, `{}`},
		{`{"a":null}`, `{"a":null}`},
		{`{"a":"x","b":0,"c":null}`, `{"a":"x","b":0,"c":null}`},
	}
	for _, tt := range tests {
		var d doc
		if err := json.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Fatalf("unmarshal %s: %v", tt.in, err)
		}
		out, err := json.Marshal(d)
		if err != nil || string(out) != tt.out {
			t.Errorf("round trip %s = %s, %v; want %s", tt.in, out, err, tt.out)
		}
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"b":"not a number"}`), &d); err == nil {
		t.Error("a wrongly typed value was accepted")
	}
	if v, ok := Some(3).Get(); !ok || v != 3 || Null[int]().Valid || !Null[int]().IsNull() {
		t.Error("Some/Null constructors are wrong")
	}
}
