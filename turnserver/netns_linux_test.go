package turnserver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// netnsHelperEnv marks the re-executed test binary that runs
// TestNetnsHelper inside a fresh network namespace; its value says how
// IPv6 is taken away there.
const netnsHelperEnv = "TRYST_TEST_NETNS_HELPER"

// TestListenWithoutIPv6 starts the relay on the default ":3478", on both
// paths, where IPv6 is off and checks that IPv4 clients are served:
//
//   - sysctl: disable_ipv6=1 on every interface, the usual way to turn IPv6
//     off on a host. Sockets can still be AF_INET6 (and are: the wildcard
//     stays dual-stack), but ::1 is gone.
//   - no-af-inet6: socket(AF_INET6) fails with EAFNOSUPPORT, as on a kernel
//     booted with ipv6.disable=1 or under systemd's RestrictAddressFamilies.
//     A namespace cannot unload IPv6, so a seccomp filter plays that kernel,
//     for the whole process: Go's net package (TCP, the portable path) as
//     well as the data plane's raw sockets.
//
// Each runs in the test binary re-executed in a new user and network
// namespace: Go's net package probes the IPv6 stack once per process, and
// neither the sysctls nor the filter may touch the host or the other tests.
func TestListenWithoutIPv6(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"sysctl", "no-af-inet6"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			if mode == "no-af-inet6" {
				switch runtime.GOARCH {
				case "amd64", "arm64", "riscv64", "loong64":
				default:
					// Elsewhere Go may reach socket(2) through socketcall(2),
					// which the filter does not look into.
					t.Skipf("seccomp filter not written for %s", runtime.GOARCH)
				}
			}
			runInNetns(t, mode)
		})
	}
}

func runInNetns(t *testing.T, mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestNetnsHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), netnsHelperEnv+"="+mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		// The namespaces could not be created (user namespaces disabled,
		// a seccomp policy): nothing to run the test in.
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot create a network namespace in CI: %v", err)
		}
		t.Skipf("cannot create a network namespace: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNetnsHelper ") {
		t.Fatalf("helper in the namespace: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "listening on") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// TestNetnsHelper is the namespace side of TestListenWithoutIPv6; run
// directly it does nothing.
func TestNetnsHelper(t *testing.T) {
	mode := os.Getenv(netnsHelperEnv)
	// Before anything opens a socket: Go's net package probes the IPv6
	// stack once, at the first use.
	switch mode {
	case "":
		return
	case "sysctl":
		for _, dev := range []string{"all", "default", "lo"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
		}
	case "no-af-inet6":
		refuseAFInet6(t)
		if _, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0); !errors.Is(err, unix.EAFNOSUPPORT) {
			t.Fatalf("socket(AF_INET6): %v, want EAFNOSUPPORT", err)
		}
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	setLinkUp(t, "lo")
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		_ = c.Close()
		t.Fatal("::1 still bindable")
	}
	for _, portable := range []bool{false, true} {
		s, _ := startServer(t, func(c *Config) {
			c.ListenAddr = "" // the default, ":3478"
			c.DisableDataPlane = portable
		})
		t.Logf("%s, portable=%v: listening on UDP %v, TCP %v", mode, portable, s.UDPAddr(), s.TCPAddr())
		peer := echoPeer(t)
		checkUDPClient(t, s, netip.MustParseAddr("127.0.0.1"), "nsv4", peer.LocalAddr().(*net.UDPAddr))
		checkTCPClient(t, s, netip.MustParseAddr("127.0.0.1"), "nsv4", peer.LocalAddr())
		// Free :3478 for the next path.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// refuseAFInet6 installs, for every thread of the process, a seccomp filter
// that fails socket(AF_INET6, ...) with EAFNOSUPPORT and allows the rest.
func refuseAFInet6(t *testing.T) {
	t.Helper()
	arg0 := uint32(16) // offsetof(struct seccomp_data, args[0]), low half on little-endian
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		arg0 += 4 // big-endian
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.SYS_SOCKET, Jf: 3},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: arg0},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.AF_INET6, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// no_new_privs is per thread; TSYNC hands it and the filter to the others.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog))); e != 0 {
		t.Fatalf("seccomp: %v", e)
	}
}

// setLinkUp brings an interface up (a new namespace's lo is down) without
// depending on ip(8).
func setLinkUp(t *testing.T, name string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("%s up: %v", name, err)
	}
}
