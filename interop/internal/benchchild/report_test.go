package benchchild

import (
	"encoding/json"
	"io"
	"os"
	"testing"
)

func TestReportLeavesZeroFieldsOut(t *testing.T) {
	b, err := json.Marshal(Report{WindowMessages: 3, WindowSecs: 1.5, TotalBytes: 9})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"window_messages":3,"window_secs":1.5,"total_bytes":9}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	all := Report{1, 2, 3, 4, 5, 6, 7, 8, 9}
	b, err = json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"window_messages":1,"window_bytes":2,"window_secs":3,"total_messages":4,` +
		`"total_bytes":5,"samples":6,"connections":7,"rss_base_kib":8,"rss_kib":9}`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

// stdout runs f and returns what it printed.
func stdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	f()
	os.Stdout = saved
	w.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResultAndListenLines(t *testing.T) {
	got := stdout(t, func() {
		Announce("127.0.0.1:5/peer")
		PrintResult(Report{TotalMessages: 2})
		PrintResult(struct {
			Nodes int `json:"nodes"`
		}{8})
	})
	want := "LISTEN 127.0.0.1:5/peer\nRESULT {\"total_messages\":2}\nRESULT {\"nodes\":8}\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
