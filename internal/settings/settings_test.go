package settings

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func newSet(t *testing.T, file string) (*flag.FlagSet, *string, *List, *PrefixList, *[2]int) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("config", file, "")
	name := fs.String("name", "default", "")
	var list List
	var prefixes PrefixList
	var ports [2]int
	fs.Var(&list, "list", "")
	fs.Var(&prefixes, "prefix", "")
	fs.Var(PortRange{Lo: &ports[0], Hi: &ports[1]}, "ports", "")
	return fs, name, &list, &prefixes, &ports
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The command line beats the environment, which beats the file, which
// beats the default; YAML lists become comma-separated values.
func TestLayerPrecedence(t *testing.T) {
	path := writeFile(t, "name: from-file\nlist: [a, b]\nprefix: 10.0.0.1\nports: 5000-5010\n")
	fs, name, list, prefixes, ports := newSet(t, "")
	if err := fs.Parse([]string{"--config", path, "--list", "c"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TRYST_NAME": "from-env", "TRYST_LIST": "from-env"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := Layer(fs, getenv); err != nil {
		t.Fatal(err)
	}
	if *name != "from-env" || !slices.Equal(*list, List{"c"}) {
		t.Errorf("name %q list %q", *name, *list)
	}
	if want := (PrefixList{netip.MustParsePrefix("10.0.0.1/32")}); !slices.Equal(*prefixes, want) {
		t.Errorf("prefix %v, want %v", *prefixes, want)
	}
	if *ports != [2]int{5000, 5010} {
		t.Errorf("ports %v", *ports)
	}
}

func TestLayerErrors(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct{ file, env, want string }{
		{file: "nosuch: 1\n", want: `unknown setting "nosuch"`},
		{file: "config: other.yaml\n", want: `unknown setting "config"`},
		{file: "name: {a: 1}\n", want: "expected a value or a list"},
		{file: "ports: 9-1\n", want: `invalid "ports" in config file`},
		{file: "name: x\n", env: "bad", want: "TRYST_PORTS"},
	} {
		fs, _, _, _, _ := newSet(t, writeFile(t, tc.file))
		getenv := none
		if tc.env != "" {
			getenv = func(k string) (string, bool) { return tc.env, k == "TRYST_PORTS" }
		}
		if err := Layer(fs, getenv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %q env %q: %v, want an error containing %q", tc.file, tc.env, err, tc.want)
		}
	}
	fs, _, _, _, _ := newSet(t, filepath.Join(t.TempDir(), "missing.yaml"))
	if err := Layer(fs, none); err == nil || !strings.Contains(err.Error(), "config file") {
		t.Errorf("missing file: %v", err)
	}
}

// Args renders the settings of a flag set defined over values that differ
// from the defaults' flag set, and parsing it back gives the same values.
func TestArgsRoundTrip(t *testing.T) {
	define := func(name string, list List, prefixes PrefixList, lo, hi int) *flag.FlagSet {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.String("name", name, "")
		fs.Var(&list, "list", "")
		fs.Var(&prefixes, "prefix", "")
		fs.Var(PortRange{Lo: &lo, Hi: &hi}, "ports", "")
		fs.Bool("same", true, "")
		return fs
	}
	set := define("x y", List{"a", "b"}, PrefixList{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("::1/128")}, 7, 9)
	args := Args(set, define("default", nil, nil, 0, 0))
	if len(args) != 4 {
		t.Errorf("args %q: want the four changed flags", args)
	}
	back, name, list, prefixes, ports := newSet(t, "")
	if err := back.Parse(args); err != nil {
		t.Fatal(err)
	}
	if *name != "x y" || list.String() != "a,b" || prefixes.String() != "192.0.2.0/24,::1/128" || *ports != [2]int{7, 9} {
		t.Errorf("parsed back from %q: %q %q %q %v", args, *name, *list, prefixes.String(), *ports)
	}
	if got := Names(set); !slices.Equal(got, []string{"list", "name", "ports", "prefix", "same"}) {
		t.Errorf("Names: %q", got)
	}
	if got := EnvName("turn-relay-ports"); got != "TRYST_TURN_RELAY_PORTS" {
		t.Errorf("EnvName: %q", got)
	}
}

func TestStateDir(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}, filepath.Join("/x/state", "tryst")},
		{map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, filepath.Join("/home/u", ".local", "state", "tryst")},
		{map[string]string{"HOME": "/home/u"}, filepath.Join("/home/u", ".local", "state", "tryst")},
		{map[string]string{"USERPROFILE": `C:\Users\u`}, filepath.Join(`C:\Users\u`, ".local", "state", "tryst")},
		{map[string]string{"HOME": ""}, ""},
		{nil, ""},
	} {
		getenv := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
		if got := StateDir(getenv); got != c.want {
			t.Errorf("StateDir(%v) = %q, want %q", c.env, got, c.want)
		}
	}
}
