package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreSettings: --store takes memory or a Redis URL with no password
// in it; a refused URL's error does not repeat its password.
func TestStoreSettings(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "store-password")
	if err := os.WriteFile(pwFile, []byte("s3cret-redis\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		store, file, want string // want: "" valid, else the setting named
	}{
		{"memory", "", ""},
		{"", "", ""},
		{"redis://127.0.0.1:6379/0", "", ""},
		{"rediss://redis.example:6380/1", pwFile, ""},
		{"redis://:hunter2@127.0.0.1:6379/0", "", "--store"},
		{"redis://user:hunter2@127.0.0.1:6379/0", "", "--store"},
		{"http://127.0.0.1:6379", "", "--store"},
		{"redis:///0", "", "--store"},
		{"memory", pwFile, "--store-password-file"},
		{"redis://127.0.0.1:6379/0", filepath.Join(t.TempDir(), "missing"), "--store-password-file"},
	} {
		cfg := testConfig()
		cfg.Store, cfg.StorePasswordFile = tc.store, tc.file
		p, err := cfg.prepare()
		var se *SettingError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.store, err)
		case tc.want != "" && (!errors.As(err, &se) || se.Setting != tc.want):
			t.Errorf("%q %q: %v, want an error about %s", tc.store, tc.file, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("the error repeats the password: %v", err)
		case tc.want == "" && tc.file != "" && p.storePass != "s3cret-redis":
			t.Errorf("password from the file: %q", p.storePass)
		}
	}
}
