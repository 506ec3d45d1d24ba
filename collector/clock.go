package collector

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is the source of time for the scheduler and anything else whose
// behaviour depends on time. Production code uses RealClock; tests use a
// FakeClock so that they advance time explicitly instead of sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns an armed timer that fires once after d.
	NewTimer(d time.Duration) Timer
	// WithTimeout is context.WithTimeout on this clock's time: the
	// context's Err is context.DeadlineExceeded once d has passed on the
	// clock. It exists so a probe's timeout follows a fake clock in tests.
	WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc)
}

// Timer is a one-shot timer made by a Clock, like *time.Timer. As with
// time.Timer since Go 1.23, no stale value is received from C after
// Reset or Stop returns.
type Timer interface {
	// C delivers the time at which the timer fired.
	C() <-chan time.Time
	// Reset re-arms the timer to fire after d, whether or not it fired.
	Reset(d time.Duration)
	// Stop disarms the timer. It reports whether the timer was armed.
	Stop() bool
}

// RealClock returns the Clock of the operating system.
func RealClock() Clock { return realClock{} }

type realClock struct{}

// Now implements Clock.
func (realClock) Now() time.Time { return time.Now() }

// NewTimer implements Clock.
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// WithTimeout implements Clock.
func (realClock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, d)
}

type realTimer struct{ t *time.Timer }

// C implements Timer.
func (t realTimer) C() <-chan time.Time { return t.t.C }

// Reset implements Timer.
func (t realTimer) Reset(d time.Duration) { t.t.Reset(d) }

// Stop implements Timer.
func (t realTimer) Stop() bool { return t.t.Stop() }

// FakeClock is a Clock for tests: time stands still until Advance moves
// it. It is safe for concurrent use. Tests synchronise with the code
// under test through BlockUntil and BlockUntilTimers instead of sleeping.
//
// Like the real clock, it keeps two times: the elapsed time that timers
// count (the monotonic clock behind time.Timer) and the wall time that
// Now reads. Advance moves both; StepWall moves only the wall time, as an
// NTP step or settimeofday does.
type FakeClock struct {
	mu sync.Mutex
	// now is the elapsed time: timers fire when it reaches their when.
	now time.Time
	// wallOffset is what StepWall added to the wall time: Now reads
	// now+wallOffset.
	wallOffset time.Duration
	// armed holds the timers waiting to fire, channel and context ones.
	armed []*fakeTimer
	// seq orders timers armed for the same instant: first armed fires first.
	seq uint64
	// changed is closed and replaced whenever the armed channel timers
	// change, to wake BlockUntil.
	changed chan struct{}
}

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

// Now implements Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wallLocked()
}

func (c *FakeClock) wallLocked() time.Time { return c.now.Add(c.wallOffset) }

// NewTimer implements Clock. A timer with d <= 0 fires at once.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// WithTimeout implements Clock. The context is done when the fake time
// reaches now+d, when parent is done, or when cancel is called. Its
// descendants see context.DeadlineExceeded as well; context.Cause on the
// returned context itself reports the parent's cause only.
func (c *FakeClock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx := &fakeTimeoutCtx{parent: parent, deadline: c.Now().Add(d), done: make(chan struct{})}
	cancel := func() { ctx.cancel(context.Canceled) }
	if err := parent.Err(); err != nil {
		ctx.cancel(err)
		return ctx, cancel
	}
	if d <= 0 {
		ctx.cancel(context.DeadlineExceeded)
		return ctx, cancel
	}
	// Hold ctx.mu while wiring up so that a concurrent Advance or parent
	// cancellation sees both the timer and the parent hook.
	ctx.mu.Lock()
	ctx.timer = &fakeTimer{clock: c, fn: func() { ctx.cancel(context.DeadlineExceeded) }}
	ctx.timer.Reset(d)
	ctx.stopParent = context.AfterFunc(parent, func() { ctx.cancel(parent.Err()) })
	ctx.mu.Unlock()
	return ctx, cancel
}

// Advance moves the clock forward by d at once, then fires every timer
// due by the new time, earliest first, the way timers fire when a
// suspended host resumes: whoever receives from a timer reads the new
// time from Now. Context deadlines are cancelled synchronously; channel
// timers deliver without blocking.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	for {
		next := c.nextDueLocked()
		if next == nil {
			break
		}
		c.disarmLocked(next)
		if next.fn != nil {
			// Cancelling a context runs AfterFuncs of its descendants,
			// which may use the clock.
			c.mu.Unlock()
			next.fn()
			c.mu.Lock()
			continue
		}
		select {
		case next.ch <- c.wallLocked():
		default: // an unread value is pending: like time.Timer, one is enough
		}
	}
	c.mu.Unlock()
}

// StepWall moves the wall time that Now reads by d, forward or back,
// without moving the elapsed time that timers count: no timer fires and
// every armed timer still fires after the same Advance, as real timers
// do when the system clock is stepped (NTP, settimeofday, a restored
// VM). Values delivered by timers and the deadlines BlockUntil reports
// are wall times, so they move by d too.
func (c *FakeClock) StepWall(d time.Duration) {
	c.mu.Lock()
	c.wallOffset += d
	// The deadlines BlockUntil reports have changed.
	c.broadcastLocked()
	c.mu.Unlock()
}

// BlockUntil blocks until ready, called with the deadlines of the armed
// timers made by NewTimer (earliest first, as wall times: what Now will
// read when each fires), returns true, or ctx is done.
// It lets a test wait until the code under test has armed its next timer,
// that is, has finished reacting to the last Advance.
func (c *FakeClock) BlockUntil(ctx context.Context, ready func(deadlines []time.Time) bool) error {
	for {
		c.mu.Lock()
		deadlines := c.channelDeadlinesLocked()
		changed := c.changed
		c.mu.Unlock()
		if ready(deadlines) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// BlockUntilTimers blocks until at least n timers made by NewTimer are
// armed, or ctx is done.
func (c *FakeClock) BlockUntilTimers(ctx context.Context, n int) error {
	return c.BlockUntil(ctx, func(deadlines []time.Time) bool { return len(deadlines) >= n })
}

func (c *FakeClock) nextDueLocked() *fakeTimer {
	var next *fakeTimer
	for _, t := range c.armed {
		if t.when.After(c.now) {
			continue
		}
		if next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq) {
			next = t
		}
	}
	return next
}

func (c *FakeClock) channelDeadlinesLocked() []time.Time {
	var deadlines []time.Time
	for _, t := range c.armed {
		if t.ch != nil {
			deadlines = append(deadlines, t.when.Add(c.wallOffset))
		}
	}
	slices.SortFunc(deadlines, func(a, b time.Time) int { return a.Compare(b) })
	return deadlines
}

func (c *FakeClock) armLocked(t *fakeTimer, d time.Duration) {
	c.seq++
	t.when, t.seq = c.now.Add(d), c.seq
	c.armed = append(c.armed, t)
	c.notifyLocked(t)
}

// disarmLocked reports whether t was armed.
func (c *FakeClock) disarmLocked(t *fakeTimer) bool {
	i := slices.Index(c.armed, t)
	if i < 0 {
		return false
	}
	c.armed = slices.Delete(c.armed, i, i+1)
	c.notifyLocked(t)
	return true
}

func (c *FakeClock) notifyLocked(t *fakeTimer) {
	if t.ch != nil {
		c.broadcastLocked()
	}
}

// broadcastLocked wakes BlockUntil to look at the deadlines again.
func (c *FakeClock) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// fakeTimer is either a channel timer (ch) or a function timer (fn).
type fakeTimer struct {
	clock *FakeClock
	ch    chan time.Time
	fn    func()
	// when is on the elapsed time (FakeClock.now), not the wall time, so
	// that StepWall does not move it.
	when time.Time
	seq  uint64
}

// C implements Timer.
func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// Reset implements Timer.
func (t *fakeTimer) Reset(d time.Duration) {
	c := t.clock
	c.mu.Lock()
	c.disarmLocked(t)
	t.drain()
	if d > 0 || t.fn != nil {
		c.armLocked(t, d)
		c.mu.Unlock()
		if d <= 0 {
			c.Advance(0)
		}
		return
	}
	t.ch <- c.wallLocked() // drained above, so this never blocks
	c.mu.Unlock()
}

// Stop implements Timer.
func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	armed := t.clock.disarmLocked(t)
	t.drain()
	return armed
}

func (t *fakeTimer) drain() {
	if t.ch == nil {
		return
	}
	select {
	case <-t.ch:
	default:
	}
}

// fakeTimeoutCtx is a context whose deadline is on a FakeClock. It keeps
// its own done channel, rather than wrapping a context.WithCancel, so
// that contexts derived from it inherit its Err (DeadlineExceeded) and
// not context.Canceled.
type fakeTimeoutCtx struct {
	parent     context.Context
	deadline   time.Time
	done       chan struct{}
	timer      *fakeTimer
	stopParent func() bool

	mu  sync.Mutex
	err error
}

// Deadline implements context.Context.
func (c *fakeTimeoutCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Done implements context.Context.
func (c *fakeTimeoutCtx) Done() <-chan struct{} { return c.done }

// Err implements context.Context.
func (c *fakeTimeoutCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value implements context.Context.
func (c *fakeTimeoutCtx) Value(key any) any { return c.parent.Value(key) }

func (c *fakeTimeoutCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	timer, stopParent := c.timer, c.stopParent
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if stopParent != nil {
		stopParent()
	}
}
