package connector_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connector"
)

func TestParseObject_Err(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"Empty", ``, "bad payload: malformed JSON at byte 0: unexpected end of JSON input"},
		{"Truncated", `{"event":"x"`, "bad payload: malformed JSON at byte 12: unexpected end of JSON input"},
		{"Garbage", `event=x`, "bad payload: malformed JSON at byte 1: invalid character 'e' looking for beginning of value"},
		{"TrailingGarbage", `{"event":"x"} {}`, "bad payload: malformed JSON at byte 15: invalid character '{' after top-level value"},
		{"Array", ` ["x"]`, "bad payload: want a JSON object, got array"},
		{"String", `"x"`, "bad payload: want a JSON object, got string"},
		{"Number", `7`, "bad payload: want a JSON object, got number"},
		{"Null", `null`, "bad payload: want a JSON object, got null"},
		{"DuplicateTop", `{"event":"callEnded","params":{},"event":"callFinished"}`, "bad payload: event: appears twice; send each member once"},
		{"DuplicateDeep", `{"data":{"list":[{"a":1},{"a":1,"b":[],"a":2}]}}`, "bad payload: data.list[1].a: appears twice; send each member once"},
		{"DuplicateEscaped", `{"data":{"id":"1","\u0069d":"2"}}`, "bad payload: data.id: appears twice; send each member once"},
		{"InvalidUTF8Value", "{\"a\":[1,\"ok\"],\"data\":{\"notes\":[\"fine\",\"caf\xe9\"]}}", "bad payload: data.notes[1]: text that is not valid UTF-8"},
		{"InvalidUTF8Name", "{\"data\":{\"n\xffme\":1}}", "bad payload: data.n\ufffdme: the member name is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := connector.ParseObject([]byte(tt.body))
			if !errors.Is(err, connector.ErrBadPayload) {
				t.Fatalf("ParseObject(%q) error %v, want ErrBadPayload", tt.body, err)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseObject(%q) error %q, want %q", tt.body, err, tt.want)
			}
		})
	}
}

func TestParseObject(t *testing.T) {
	body := []byte(" {\"b\":1,\"a\":null,\"c\":\"x\"}\n")
	o, err := connector.ParseObject(body)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(o.Raw()); got != string(body) {
		t.Errorf("Raw() = %q, want the body %q", got, body)
	}
	if got, want := o.Names(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got := o.Get("a"); got != nil {
		t.Errorf("Get(null member) = %q, want nil", got)
	}
	if got := o.Get("missing"); got != nil {
		t.Errorf("Get(absent member) = %q, want nil", got)
	}
	if got := string(o.Get("c")); got != `"x"` {
		t.Errorf(`Get("c") = %q, want "\"x\""`, got)
	}
	if got := o.At("c"); got != "c" {
		t.Errorf(`At("c") = %q, want "c"`, got)
	}
}

// TestParseObject_SameNameApart: the same name in different objects, and
// UTF-8 text of every width, are fine.
func TestParseObject_SameNameApart(t *testing.T) {
	body := `{"a":{"id":1},"b":{"id":2},"c":[{"id":3},{"id":4}],"id":"café 日本 😀"}`
	if _, err := connector.ParseObject([]byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckID(t *testing.T) {
	for _, tt := range []struct{ id, want string }{
		{"0B2C3D4E5F60718293", ""},
		{strings.Repeat("x", connector.MaxIDLen), ""},
		{strings.Repeat("x", connector.MaxIDLen+1), "bad payload: data.interactionId: 129 bytes is longer than an id can be (128)"},
		{"abc\ndef", "bad payload: data.interactionId: holds the control character U+000A at byte 3"},
		{"abc\u0085", "bad payload: data.interactionId: holds the control character U+0085 at byte 3"},
	} {
		err := connector.CheckID("data.interactionId", tt.id)
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("CheckID(%q) = %v, want %q", connector.Clip(tt.id), err, tt.want)
		}
	}
}

func TestReader_ID(t *testing.T) {
	o := parse(t, `{"ok":" 42 ","long":"`+strings.Repeat("9", 200)+`","nl":"a\u0000b"}`)
	var r connector.Reader
	if got := r.ID(o, "ok"); got != "42" || r.Err() != nil {
		t.Fatalf("ID(ok) = %q, %v", got, r.Err())
	}
	if got := r.ID(o, "long"); got != "" || !errors.Is(r.Err(), connector.ErrBadPayload) || !strings.Contains(r.Err().Error(), "long:") {
		t.Errorf("ID(long) = %q, %v; want a bad payload naming long", got, r.Err())
	}
	var r2 connector.Reader
	if got := r2.ID(o, "nl"); got != "" || !strings.Contains(fmt.Sprint(r2.Err()), "nl: holds the control character U+0000") {
		t.Errorf("ID(nl) = %q, %v", got, r2.Err())
	}
}

func TestKind(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`{}`, "object"}, {` []`, "array"}, {`"s"`, "string"}, {`-1.5`, "number"},
		{`true`, "boolean"}, {`false`, "boolean"}, {"\tnull", "null"}, {``, "nothing"}, {" \n", "nothing"},
	}
	for _, tt := range tests {
		if got := connector.Kind([]byte(tt.raw)); got != tt.want {
			t.Errorf("Kind(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// parse parses body or fails the test.
func parse(t *testing.T, body string) connector.Object {
	t.Helper()
	o, err := connector.ParseObject([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestReader(t *testing.T) {
	top := parse(t, `{"data":{"s":" x ","n":1.5,"b":true,"f":false,"o":{"k":"v"},"z":null}}`)
	var r connector.Reader
	data, ok := r.Obj(top, "data")
	if !ok || data.At("s") != "data.s" {
		t.Fatalf(`Obj("data") = %v, %v; want an object at path data`, data, ok)
	}
	if got := r.Str(data, "s"); got != "x" {
		t.Errorf("Str = %q, want %q (trimmed)", got, "x")
	}
	if got, ok := r.Num(data, "n"); got != 1.5 || !ok {
		t.Errorf("Num = %v, %v, want 1.5, true", got, ok)
	}
	if got := r.Bool(data, "b"); got == nil || !*got {
		t.Errorf("Bool(true) = %v, want true", got)
	}
	if got := r.Bool(data, "f"); got == nil || *got {
		t.Errorf("Bool(false) = %v, want false", got)
	}
	if o, ok := r.Obj(data, "o"); !ok || r.Str(o, "k") != "v" || o.At("k") != "data.o.k" {
		t.Errorf(`Obj("o") = %v, %v`, o, ok)
	}
	// Absent and null members read as unset.
	for _, name := range []string{"z", "missing"} {
		if r.Str(data, name) != "" || r.Bool(data, name) != nil {
			t.Errorf("%s: Str or Bool is set", name)
		}
		if _, ok := r.Num(data, name); ok {
			t.Errorf("%s: Num is set", name)
		}
		o, ok := r.Obj(data, name)
		if ok || o.At("id") != "data."+name+".id" {
			t.Errorf("%s: Obj = %v, %v; want unset with its path", name, o, ok)
		}
	}
	if err := r.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

func TestReader_Err(t *testing.T) {
	tests := []struct {
		name string
		read func(r *connector.Reader, o connector.Object)
		want string
	}{
		{"Str", func(r *connector.Reader, o connector.Object) { r.Str(o, "n") }, "d.n: want string, got number"},
		{"Num", func(r *connector.Reader, o connector.Object) { r.Num(o, "s") }, "d.s: want number, got string"},
		{"NumOverflow", func(r *connector.Reader, o connector.Object) { r.Num(o, "big") }, "d.big: number 1e999 is out of range"},
		{"Bool", func(r *connector.Reader, o connector.Object) { r.Bool(o, "a") }, "d.a: want boolean, got array"},
		{"Obj", func(r *connector.Reader, o connector.Object) { r.Obj(o, "a") }, "d.a: want object, got array"},
		{"Objects", func(r *connector.Reader, o connector.Object) { r.Objects(o, "s") }, "d.s: want array, got string"},
		{"ObjectsElement", func(r *connector.Reader, o connector.Object) {
			for range r.Objects(o, "a") {
			}
		}, "d.a[2]: want object, got number"},
		{"WrongType", func(r *connector.Reader, o connector.Object) { r.WrongType(o, "z", "string or number") }, "d.z: want string or number, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := parse(t, `{"d":{"s":"x","n":1,"big":1e999,"a":[{},null,3],"z":null}}`)
			var r connector.Reader
			d, _ := r.Obj(top, "d")
			tt.read(&r, d)
			err := r.Err()
			if !errors.Is(err, connector.ErrBadPayload) || err.Error() != "bad payload: "+tt.want {
				t.Errorf("Err() = %v, want bad payload: %s", err, tt.want)
			}
		})
	}
}

func TestReader_KeepsFirstError(t *testing.T) {
	o := parse(t, `{"a":1,"b":2,"s":"x","o":{},"l":[{}]}`)
	var r connector.Reader
	r.Str(o, "a")
	first := r.Err()
	r.Str(o, "b")
	r.Fail(errors.New("later"))
	if r.Err() != first {
		t.Errorf("Err() = %v, want the first error %v", r.Err(), first)
	}
	// Once an error is recorded, nothing more is read.
	if s := r.Str(o, "s"); s != "" {
		t.Errorf("Str after an error = %q, want empty", s)
	}
	if _, ok := r.Obj(o, "o"); ok {
		t.Error("Obj after an error is set")
	}
	for range r.Objects(o, "l") {
		t.Error("Objects after an error yields")
	}
}

func TestReader_Objects(t *testing.T) {
	o := parse(t, `{"l":[{"k":"a"},null,{"k":"b"},{"k":3},{"k":"c"}]}`)
	var r connector.Reader
	var got []string
	for e := range r.Objects(o, "l") {
		got = append(got, e.At("k")+"="+r.Str(e, "k"))
	}
	// The error in l[3] ends the loop: l[4] is not read.
	if want := []string{"l[0].k=a", "l[2].k=b", "l[3].k="}; !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "l[3].k: want string, got number") {
		t.Errorf("Err() = %v, want l[3].k's", err)
	}

	var r2 connector.Reader
	for range r2.Objects(o, "missing") {
		t.Error("Objects of an absent member yields")
	}
	if r2.Err() != nil {
		t.Errorf("Err() = %v for an absent member", r2.Err())
	}
}

func TestClip(t *testing.T) {
	short := strings.Repeat("x", 64)
	if got := connector.Clip(short); got != short {
		t.Errorf("Clip(64 bytes) = %q, want it unchanged", got)
	}
	long := strings.Repeat("x", 63) + "é" // the 64-byte cut splits é
	if got, want := connector.Clip(long), strings.Repeat("x", 63)+"…"; got != want {
		t.Errorf("Clip(%q) = %q, want %q", long, got, want)
	}
}

func ExampleReader() {
	top, err := connector.ParseObject([]byte(`{"event":"end","data":{"id":"i1","duration":"12"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var r connector.Reader
	event := r.Str(top, "event")
	data, _ := r.Obj(top, "data")
	id := r.Str(data, "id")
	duration, _ := r.Num(data, "duration")
	if err := r.Err(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(event, id, duration)
	// Output: bad payload: data.duration: want number, got string
}
