// Package settings layers a command's settings: every setting is a flag, a
// TRYST_<NAME> environment variable and a key of an optional YAML file,
// with precedence flag > environment > file > default. It also holds the
// flag types those settings need (lists, CIDR lists, port ranges, a
// --ca-file's roots) and renders a flag set back into a command line for a
// child process.
package settings

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tryst-chat/tryst/turnserver"
)

// Layer applies the environment and the YAML file named by the "config"
// flag (if fs has one) to the flags that the command line left unset.
func Layer(fs *flag.FlagSet, getenv func(string) (string, bool)) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var file map[string]any
	if cf := fs.Lookup("config"); cf != nil {
		path := cf.Value.String()
		if !set["config"] {
			if v, ok := getenv(EnvName("config")); ok {
				path = v
			}
		}
		if path != "" {
			var err error
			if file, err = ReadFile(path); err != nil {
				return err
			}
			for key := range file {
				if fs.Lookup(key) == nil || key == "config" {
					return fmt.Errorf("config file %s: unknown setting %q", path, key)
				}
			}
		}
	}

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := getenv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("invalid %s=%q: %v", EnvName(f.Name), v, e)
			}
			return
		}
		if raw, ok := file[f.Name]; ok {
			v, e := yamlValue(raw)
			if e == nil {
				e = fs.Set(f.Name, v)
			}
			if e != nil {
				err = fmt.Errorf("invalid %q in config file: %v", f.Name, e)
			}
		}
	})
	return err
}

// EnvName maps a flag name to its environment variable: turn-ttl → TRYST_TURN_TTL.
func EnvName(flagName string) string {
	return "TRYST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ReadFile reads a YAML settings file into its keys and values.
func ReadFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return m, nil
}

// yamlValue renders a YAML scalar or list of scalars as a flag value; lists
// become comma-separated.
func yamlValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, err := yamlValue(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("expected a value or a list, got a mapping")
	default:
		return fmt.Sprint(v), nil
	}
}

// List is a repeatable, comma-separated flag.
type List []string

func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *List) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// PrefixList is a repeatable, comma-separated flag of CIDRs; a bare
// address is its own /32 or /128.
type PrefixList []netip.Prefix

func (l *PrefixList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *PrefixList) Set(s string) error {
	var vals List
	_ = vals.Set(s)
	for _, v := range vals {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return fmt.Errorf("%q is not a CIDR", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		*l = append(*l, p.Masked())
	}
	return nil
}

// PortRange is a "MIN-MAX" port range (or one port) held in two ints.
type PortRange struct{ Lo, Hi *int }

func (r PortRange) String() string {
	if r.Lo == nil || r.Hi == nil {
		return ""
	}
	return fmt.Sprintf("%d-%d", *r.Lo, *r.Hi)
}

func (r PortRange) Set(s string) error {
	lo, hi, err := turnserver.ParsePortRange(s)
	if err != nil {
		return err
	}
	*r.Lo, *r.Hi = lo, hi
	return nil
}

// Args renders the flags of set whose values differ from those of def
// (the same flags, over defaults) as --name=value arguments: settings held
// in a struct become a command line for another process.
func Args(set, def *flag.FlagSet) []string {
	var args []string
	set.VisitAll(func(f *flag.Flag) {
		if d := def.Lookup(f.Name); d == nil || d.DefValue != f.DefValue {
			args = append(args, "--"+f.Name+"="+f.DefValue)
		}
	})
	return args
}

// Names lists the flags of fs, for docs and tests.
func Names(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	return names
}

// StateDir is where tryst keeps state between runs when no flag says
// otherwise: serve's hub key, and what chat, send and receive need to come
// back after the process died. It is $XDG_STATE_HOME/tryst (an
// XDG_STATE_HOME that is not absolute is ignored, as the XDG specification
// says), else %LocalAppData%\tryst\state on Windows, else
// ~/.local/state/tryst under HOME (or USERPROFILE); "" when none is set.
func StateDir(getenv func(string) (string, bool)) string {
	if x, ok := getenv("XDG_STATE_HOME"); ok && filepath.IsAbs(x) {
		return filepath.Join(x, "tryst")
	}
	if runtime.GOOS == "windows" {
		if d, ok := getenv("LocalAppData"); ok && d != "" {
			return filepath.Join(d, "tryst", "state")
		}
	}
	for _, v := range []string{"HOME", "USERPROFILE"} {
		if h, ok := getenv(v); ok && h != "" {
			return filepath.Join(h, ".local", "state", "tryst")
		}
	}
	return ""
}

// RootsWith returns the system's root certificates plus the PEM
// certificates in file (a --ca-file: a private CA, or a self-signed
// certificate). The error names file and says what is wrong with it.
func RootsWith(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return roots, nil
}
