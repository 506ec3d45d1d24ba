package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// exchange sends the run's echo requests, packet_interval apart, and
// collects the replies until every request is answered (or refused by an
// ICMP error) or ctx ends. It owns conn and closes it.
func (p *icmpProber) exchange(ctx context.Context, conn net.PacketConn, filter *echoFilter, dst net.Addr, result *Result) error {
	start := time.Now()
	defer func() { result.Phases.Add(PhaseProcessing, time.Since(start)) }()
	run := newEchoRun(filter)
	result.Packets = &run.counts
	defer run.summarise()

	// Writes are bound by ctx: by its deadline, and by its cancellation
	// through an already-passed deadline. The reader needs no deadline:
	// closing conn ends it.
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetWriteDeadline(deadline); err != nil {
			conn.Close()
			return fmt.Errorf("setting write deadline: %w", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	reader := startEchoReader(conn, filter)
	defer reader.stop()

	timer := time.NewTimer(p.interval)
	defer timer.Stop()
	if err := run.send(conn, dst, result); err != nil {
		return err
	}
	for run.settled < p.packets {
		next := timer.C
		if run.counts.Sent == p.packets {
			next = nil
		}
		select {
		case <-ctx.Done():
			return run.verdict(ctx.Err(), p.maxLoss, result)
		case <-next:
			if err := run.send(conn, dst, result); err != nil {
				return err
			}
			if run.counts.Sent < p.packets {
				timer.Reset(p.interval)
			}
		case event := <-reader.events:
			// Only the target's echo replies count: a reply with our ID
			// and sequence from another host is forged or misrouted. ICMP
			// errors come from routers on the way: taken from anyone.
			if event.icmpError != "" || sameIP(event.from, dst) {
				run.record(event)
			}
		case <-reader.finished:
			return fmt.Errorf("reading echo replies: %w", reader.err)
		}
	}
	return run.verdict(nil, p.maxLoss, result)
}

// echoRequestState is where one echo request of a run stands.
type echoRequestState uint8

const (
	echoPending  echoRequestState = iota
	echoAnswered                  // its reply came (once or more)
	echoRefused                   // an ICMP error came back instead; a reply may still follow
)

// echoRun is the state of one run's exchange, owned by its goroutine.
type echoRun struct {
	filter *echoFilter
	sentAt []time.Time
	states []echoRequestState
	// settled counts the requests no longer pending.
	settled int
	counts  PacketResult
	rttSum  time.Duration
	// icmpError describes the first ICMP error about one of the requests.
	icmpError string
}

func newEchoRun(filter *echoFilter) *echoRun {
	return &echoRun{
		filter: filter,
		sentAt: make([]time.Time, 0, filter.count),
		states: make([]echoRequestState, filter.count),
	}
}

// send sends the next echo request.
func (r *echoRun) send(conn net.PacketConn, dst net.Addr, result *Result) error {
	index := r.counts.Sent
	request, err := r.filter.request(index)
	if err != nil {
		return fmt.Errorf("building echo request: %w", err)
	}
	r.sentAt = append(r.sentAt, time.Now())
	if _, err := conn.WriteTo(request, dst); err != nil {
		r.sentAt = r.sentAt[:index]
		if errors.Is(err, os.ErrPermission) {
			// A firewall rule (EPERM) or a broadcast address (EACCES).
			result.Reason = ReasonPermission
		}
		return fmt.Errorf("sending echo request %d of %d: %w", index+1, r.filter.count, err)
	}
	r.counts.Sent++
	return nil
}

// record takes in a packet the reader matched to a request.
func (r *echoRun) record(event echoEvent) {
	if event.index >= r.counts.Sent {
		return // about a request not sent yet: forged
	}
	state := &r.states[event.index]
	if event.icmpError != "" {
		if *state == echoPending {
			*state = echoRefused
			r.settled++
		}
		if r.icmpError == "" {
			r.icmpError = fmt.Sprintf("%s from %v", event.icmpError, event.from)
		}
		return
	}
	switch *state {
	case echoAnswered:
		return // a duplicate: counted once
	case echoPending:
		r.settled++
	}
	*state = echoAnswered
	rtt := event.at.Sub(r.sentAt[event.index])
	if r.counts.Received == 0 || rtt < r.counts.RTTMin {
		r.counts.RTTMin = rtt
	}
	r.counts.RTTMax = max(r.counts.RTTMax, rtt)
	r.rttSum += rtt
	r.counts.Received++
}

// summarise fills in the mean round trip time.
func (r *echoRun) summarise() {
	if r.counts.Received > 0 {
		r.counts.RTTMean = r.rttSum / time.Duration(r.counts.Received)
	}
}

// verdict judges the run once every request is settled or, with ctxErr
// set, when its context ended: requests still unanswered then are lost. A
// context that ends before every request was sent fails the run with the
// context's error instead (its timeout, for the scheduler).
func (r *echoRun) verdict(ctxErr error, maxLoss float64, result *Result) error {
	sent, received := r.counts.Sent, r.counts.Received
	if sent < r.filter.count {
		return fmt.Errorf("ended after sending %d of %d echo requests (%d answered): %w", sent, r.filter.count, received, ctxErr)
	}
	lost := sent - received
	ratio := float64(lost) / float64(sent)
	if ratio <= maxLoss {
		return nil
	}
	result.Reason = ReasonPacketLoss
	err := fmt.Errorf("%d of %d echo requests unanswered (%.3g%% > max_loss_ratio %.3g%%)", lost, sent, 100*ratio, 100*maxLoss)
	if r.icmpError != "" {
		err = fmt.Errorf("%w; received %s", err, r.icmpError)
	}
	return err
}

// echoEvent is a packet matched to a request, with when it was read and
// where it came from.
type echoEvent struct {
	echoMatch
	at   time.Time
	from net.Addr
}

// echoReader reads the socket of a run in its own goroutine and passes on
// the packets the filter matches; the run's goroutine sends meanwhile.
type echoReader struct {
	conn   net.PacketConn
	events chan echoEvent
	// done is closed by stop: the reader gives up handing on a packet.
	done chan struct{}
	// finished is closed when the reader returns; err is set before.
	finished chan struct{}
	err      error
}

func startEchoReader(conn net.PacketConn, filter *echoFilter) *echoReader {
	r := &echoReader{
		conn:     conn,
		events:   make(chan echoEvent),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	go r.read(filter)
	return r
}

func (r *echoReader) read(filter *echoFilter) {
	defer close(r.finished)
	// One buffer per run, sized for the run's replies: larger packets
	// are truncated by the read and then fail to match.
	buf := make([]byte, filter.readBufferSize())
	for {
		n, from, err := r.conn.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			r.err = err
			return
		}
		match, ok := filter.match(buf[:n])
		if !ok {
			continue
		}
		select {
		case r.events <- echoEvent{echoMatch: match, at: at, from: from}:
		case <-r.done:
			return
		}
	}
}

// stop closes the socket, which ends the reader's read, and waits for the
// reader to return.
func (r *echoReader) stop() {
	close(r.done)
	r.conn.Close()
	<-r.finished
}

// sameIP tells whether a and b (*net.IPAddr or *net.UDPAddr, as ICMP
// sockets return them) hold the same IP address.
func sameIP(a, b net.Addr) bool {
	ipA, okA := addrIP(a)
	ipB, okB := addrIP(b)
	return okA && okB && ipA == ipB
}

func addrIP(addr net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := addr.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	parsed, ok := netip.AddrFromSlice(ip)
	return parsed.Unmap(), ok
}
