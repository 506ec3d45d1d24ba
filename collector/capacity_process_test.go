package collector

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reliabilityd/reliabilityd/config"
)

func TestProcessSourceSelfOpenFDs(t *testing.T) {
	src, err := NewCapacitySource(config.CapacitySource{Process: &config.ProcessSource{Self: true, Resource: "open_fds"}}, 0, CapacityDeps{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	// The first file opened may also set up the runtime's poller (its own
	// descriptors): open one before the baseline.
	open("warm-up")
	var rlimit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rlimit); err != nil {
		t.Fatal(err)
	}
	base, err := src.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const extra = 5
	files := make([]*os.File, extra)
	for i := range files {
		files[i] = open("f" + strconv.Itoa(i))
	}
	m, err := src.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Measurement{Usage: base.Usage + extra, Limit: float64(rlimit.Cur)}); m != want || base.Limit != want.Limit {
		t.Errorf("with %d more files open: got %+v (before: %+v), want %+v", extra, m, base, want)
	}
	for _, f := range files {
		f.Close()
	}
	if m, err = src.Sample(context.Background()); err != nil || m.Usage != base.Usage {
		t.Errorf("after closing them: got %+v, %v; want usage %v", m, err, base.Usage)
	}
}

// TestProcessSourceSelfConnections opens loopback connections within the
// test process: each is two established sockets of this process, the
// client's and the one Accept returns; the listeners are LISTEN and do not
// count. Over IPv4 and, where available, IPv6 (/proc/<pid>/net/tcp6).
func TestProcessSourceSelfConnections(t *testing.T) {
	const limit = 100
	src, err := NewCapacitySource(config.CapacitySource{Process: &config.ProcessSource{Self: true, Resource: "connections"}}, limit, CapacityDeps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		network, address string
		conns            int
	}{
		{"tcp4", "127.0.0.1:0", 3},
		{"tcp6", "[::1]:0", 2},
	} {
		t.Run(tc.network, func(t *testing.T) {
			// The baseline is taken before listening: the listener must
			// not count.
			base, err := src.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen(tc.network, tc.address)
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.network, err)
			}
			defer ln.Close()
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range tc.conns {
				client, err := net.Dial(tc.network, ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, client)
				server, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, server)
			}
			m, err := src.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := (Measurement{Usage: base.Usage + float64(2*tc.conns), Limit: limit}); m != want {
				t.Errorf("with %d connections open: got %+v (before: %+v), want %+v", tc.conns, m, base, want)
			}
			for _, c := range conns {
				c.Close()
			}
			conns = nil
			// Closed sockets leave the fd table at once, even those the
			// kernel keeps in TIME_WAIT.
			if m, err = src.Sample(context.Background()); err != nil || m.Usage != base.Usage {
				t.Errorf("after closing them: got %+v, %v; want usage %v", m, err, base.Usage)
			}
		})
	}
}

// fixtureProcess builds a proc root holding process 4242 from
// testdata/procfs/4242, and its fd table:
//
//	0 /dev/null, 1 pipe:[77], 3 socket:[1001] (tcp, LISTEN),
//	4 and 5 socket:[1002] (tcp, ESTABLISHED, dup'ed),
//	6 socket:[1003] (tcp, CLOSE_WAIT), 7 socket:[1004] (tcp6, ESTABLISHED),
//	8 socket:[1005] (tcp6, LISTEN), 9 socket:[3001] (not TCP),
//	10 anon_inode:[eventfd]
//
// 10 descriptors; 3 TCP sockets not listening (1002, 1003, 1004).
// net/tcp also lists socket 2001 (another process') and a TIME_WAIT
// socket with inode 0, which do not count. limits: soft "Max open files"
// 1024.
func fixtureProcess(t *testing.T) (root string) {
	root = t.TempDir()
	copyFixture(t, root, map[string]string{
		"4242/limits":   "4242/limits",
		"4242/net/tcp":  "4242/net/tcp",
		"4242/net/tcp6": "4242/net/tcp6",
	})
	fdDir := filepath.Join(root, "4242", "fd")
	if err := os.MkdirAll(fdDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for fd, target := range map[int]string{
		0: "/dev/null", 1: "pipe:[77]", 3: "socket:[1001]", 4: "socket:[1002]", 5: "socket:[1002]",
		6: "socket:[1003]", 7: "socket:[1004]", 8: "socket:[1005]", 9: "socket:[3001]", 10: "anon_inode:[eventfd]",
	} {
		if err := os.Symlink(target, filepath.Join(fdDir, strconv.Itoa(fd))); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestProcessSourcePIDFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resource string
		limit    float64
		// change alters the fixture root before the sample.
		change func(t *testing.T, root string)
		want   Measurement
	}{
		{name: "open_fds", resource: "open_fds", want: Measurement{Usage: 10, Limit: 1024}},
		{name: "open_fds with limit", resource: "open_fds", limit: 2048, want: Measurement{Usage: 10, Limit: 2048}},
		// The limits file is not read when a limit is configured.
		{name: "open_fds with limit, no limits file", resource: "open_fds", limit: 2048,
			change: func(t *testing.T, root string) { removeFixture(t, root, "4242/limits") },
			want:   Measurement{Usage: 10, Limit: 2048}},
		{name: "open_fds unlimited", resource: "open_fds",
			change: func(t *testing.T, root string) {
				writeFixture(t, root, "4242/limits", "Limit                     Soft Limit           Hard Limit           Units     \n"+
					"Max open files            unlimited            unlimited            files     \n")
			},
			want: Measurement{Usage: 10, Limit: 0}},
		{name: "connections", resource: "connections", limit: 50, want: Measurement{Usage: 3, Limit: 50}},
		// IPv6 disabled: no tcp6 file, so no tcp6 sockets (1004 gone).
		{name: "connections without tcp6", resource: "connections", limit: 50,
			change: func(t *testing.T, root string) { removeFixture(t, root, "4242/net/tcp6") },
			want:   Measurement{Usage: 2, Limit: 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fixtureProcess(t)
			if tc.change != nil {
				tc.change(t, root)
			}
			pidFile := filepath.Join(t.TempDir(), "app.pid")
			writeFixture(t, filepath.Dir(pidFile), "app.pid", "4242\n")
			src, err := NewCapacitySource(config.CapacitySource{Process: &config.ProcessSource{PIDFile: pidFile, Resource: tc.resource}},
				tc.limit, CapacityDeps{ProcRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			m, err := src.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if m != tc.want {
				t.Errorf("got %+v, want %+v", m, tc.want)
			}
		})
	}
}

func TestProcessSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pidFile  string // content; "" for no pid file
		resource string
		change   func(t *testing.T, root string)
		want     Reason
		contains []string
	}{
		{name: "missing pid file", resource: "open_fds", want: ReasonNotFound, contains: []string{"pid file", "app.pid"}},
		{name: "garbage pid file", pidFile: "not a pid\n", resource: "open_fds", want: ReasonProtocol,
			contains: []string{"app.pid", `"not a pid" is not a process id`}},
		{name: "empty pid file", pidFile: "", resource: "open_fds", want: ReasonProtocol, contains: []string{`"" is not a process id`}},
		{name: "zero pid", pidFile: "0\n", resource: "open_fds", want: ReasonProtocol, contains: []string{`"0" is not a process id`}},
		{name: "negative pid", pidFile: "-4242\n", resource: "open_fds", want: ReasonProtocol, contains: []string{`"-4242" is not a process id`}},
		{name: "two pids", pidFile: "4242\n4243\n", resource: "open_fds", want: ReasonProtocol, contains: []string{"is not a process id"}},
		{name: "huge pid file", pidFile: "4242\n" + strings.Repeat(" ", 100), resource: "open_fds", want: ReasonProtocol,
			contains: []string{"longer than 64 bytes"}},
		{name: "no such process", pidFile: "999999\n", resource: "open_fds", want: ReasonNotFound,
			contains: []string{"process 999999", "app.pid"}},
		{name: "malformed net/tcp", pidFile: "4242\n", resource: "connections",
			change: func(t *testing.T, root string) {
				writeFixture(t, root, "4242/net/tcp", "  sl  local_address rem_address   st\n   0: 0100007F:1F90 0100007F:D431 01\n")
			},
			want: ReasonProtocol, contains: []string{"net/tcp", "line 2"}},
		{name: "bad inode in net/tcp", pidFile: "4242\n", resource: "connections",
			change: func(t *testing.T, root string) {
				writeFixture(t, root, "4242/net/tcp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
					"   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 x1002 1\n")
			},
			want: ReasonProtocol, contains: []string{"net/tcp", "inode"}},
		{name: "no net/tcp", pidFile: "4242\n", resource: "connections",
			change: func(t *testing.T, root string) { removeFixture(t, root, "4242/net/tcp") },
			want:   ReasonNotFound, contains: []string{"net/tcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fixtureProcess(t)
			if tc.change != nil {
				tc.change(t, root)
			}
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "app.pid")
			if tc.name != "missing pid file" {
				writeFixture(t, dir, "app.pid", tc.pidFile)
			}
			src, err := NewCapacitySource(config.CapacitySource{Process: &config.ProcessSource{PIDFile: pidFile, Resource: tc.resource}},
				50, CapacityDeps{ProcRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Sample(context.Background())
			wantSourceError(t, err, tc.want, tc.contains...)
		})
	}
}

// TestProcessSourceFollowsPIDFile checks that the pid file is read at
// every sample, so a restarted process is followed.
func TestProcessSourceFollowsPIDFile(t *testing.T) {
	root := fixtureProcess(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "app.pid")
	writeFixture(t, dir, "app.pid", "999999\n")
	src, err := NewCapacitySource(config.CapacitySource{Process: &config.ProcessSource{PIDFile: pidFile, Resource: "open_fds"}},
		0, CapacityDeps{ProcRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Sample(context.Background())
	wantSourceError(t, err, ReasonNotFound)
	writeFixture(t, dir, "app.pid", "4242\n")
	if m, err := src.Sample(context.Background()); err != nil || m.Usage != 10 {
		t.Errorf("after the pid file changed: got %+v, %v; want usage 10", m, err)
	}
}

func TestProcessSourceContextDone(t *testing.T) {
	src, err := NewCapacitySource(config.CapacitySource{Process: &config.ProcessSource{Self: true, Resource: "connections"}}, 10, CapacityDeps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = src.Sample(ctx)
	wantSourceError(t, err, ReasonTimeout)
}

func removeFixture(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}
