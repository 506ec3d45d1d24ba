package collector

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestFakeClockTimers(t *testing.T) {
	start := time.Unix(schedTestStart, 0)
	tests := []struct {
		name string
		// run acts on a fresh clock and timer (armed for 10s) and returns
		// whether the timer fired and, if so, the time it delivered.
		run       func(c *FakeClock, timer Timer) (bool, time.Time)
		wantFired bool
		wantAt    time.Time
	}{
		{"not yet due", func(c *FakeClock, timer Timer) (bool, time.Time) {
			c.Advance(9 * time.Second)
			return fakeTimerReceived(timer)
		}, false, time.Time{}},
		{"due exactly", func(c *FakeClock, timer Timer) (bool, time.Time) {
			c.Advance(10 * time.Second)
			return fakeTimerReceived(timer)
		}, true, start.Add(10 * time.Second)},
		{"jump past delivers the new time", func(c *FakeClock, timer Timer) (bool, time.Time) {
			c.Advance(time.Minute)
			return fakeTimerReceived(timer)
		}, true, start.Add(time.Minute)},
		{"stopped", func(c *FakeClock, timer Timer) (bool, time.Time) {
			if !timer.Stop() {
				t.Error("Stop of an armed timer returned false")
			}
			if timer.Stop() {
				t.Error("second Stop returned true")
			}
			c.Advance(time.Minute)
			return fakeTimerReceived(timer)
		}, false, time.Time{}},
		{"reset later", func(c *FakeClock, timer Timer) (bool, time.Time) {
			timer.Reset(20 * time.Second)
			c.Advance(15 * time.Second)
			if fired, _ := fakeTimerReceived(timer); fired {
				t.Error("fired at its old deadline")
			}
			c.Advance(5 * time.Second)
			return fakeTimerReceived(timer)
		}, true, start.Add(20 * time.Second)},
		{"reset drops a value not received", func(c *FakeClock, timer Timer) (bool, time.Time) {
			c.Advance(10 * time.Second)
			timer.Reset(time.Second)
			return fakeTimerReceived(timer)
		}, false, time.Time{}},
		{"reset to zero fires at once", func(c *FakeClock, timer Timer) (bool, time.Time) {
			c.Advance(time.Second)
			timer.Reset(0)
			return fakeTimerReceived(timer)
		}, true, start.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFakeClock(start)
			fired, at := tt.run(c, c.NewTimer(10*time.Second))
			if fired != tt.wantFired || !at.Equal(tt.wantAt) {
				t.Fatalf("fired %v at %v, want %v at %v", fired, at, tt.wantFired, tt.wantAt)
			}
		})
	}
}

func fakeTimerReceived(timer Timer) (bool, time.Time) {
	select {
	case at := <-timer.C():
		return true, at
	default:
		return false, time.Time{}
	}
}

func TestFakeClockFiresInDeadlineOrder(t *testing.T) {
	c := NewFakeClock(time.Unix(schedTestStart, 0))
	var order []string
	// Function timers (those behind WithTimeout) run synchronously in
	// Advance, so their order is observable.
	for _, timer := range []struct {
		name  string
		after time.Duration
	}{{"3s", 3 * time.Second}, {"1s", time.Second}, {"1s-second", time.Second}, {"9s", 9 * time.Second}} {
		ft := &fakeTimer{clock: c, fn: func() { order = append(order, timer.name) }}
		ft.Reset(timer.after)
	}
	c.Advance(5 * time.Second)
	if want := []string{"1s", "1s-second", "3s"}; !slices.Equal(order, want) {
		t.Fatalf("fired %v, want %v", order, want)
	}
	c.Advance(5 * time.Second)
	if want := []string{"1s", "1s-second", "3s", "9s"}; !slices.Equal(order, want) {
		t.Fatalf("fired %v, want %v", order, want)
	}
}

func TestFakeClockWithTimeout(t *testing.T) {
	start := time.Unix(schedTestStart, 0)
	tests := []struct {
		name    string
		timeout time.Duration
		// act runs after the context is made; parentCancel cancels its parent.
		act     func(c *FakeClock, cancel, parentCancel context.CancelFunc)
		wantErr error
	}{
		{"running", 5 * time.Second, func(c *FakeClock, _, _ context.CancelFunc) { c.Advance(4 * time.Second) }, nil},
		{"deadline", 5 * time.Second, func(c *FakeClock, _, _ context.CancelFunc) { c.Advance(5 * time.Second) }, context.DeadlineExceeded},
		{"cancelled", 5 * time.Second, func(c *FakeClock, cancel, _ context.CancelFunc) {
			cancel()
			c.Advance(time.Minute)
		}, context.Canceled},
		{"parent cancelled", 5 * time.Second, func(c *FakeClock, _, parentCancel context.CancelFunc) { parentCancel() }, context.Canceled},
		{"zero timeout", 0, func(*FakeClock, context.CancelFunc, context.CancelFunc) {}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFakeClock(start)
			parent, parentCancel := context.WithCancel(context.Background())
			defer parentCancel()
			ctx, cancel := c.WithTimeout(parent, tt.timeout)
			defer cancel()
			if deadline, ok := ctx.Deadline(); !ok || !deadline.Equal(start.Add(tt.timeout)) {
				t.Fatalf("deadline %v, %v; want %v", deadline, ok, start.Add(tt.timeout))
			}
			// A descendant, as net/http makes, must see the same error.
			child, cancelChild := context.WithCancel(ctx)
			defer cancelChild()
			tt.act(c, cancel, parentCancel)
			if tt.wantErr != nil {
				<-child.Done()
			}
			if err := ctx.Err(); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Err() = %v, want %v", err, tt.wantErr)
			}
			if err := child.Err(); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("child Err() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestFakeClockBlockUntil(t *testing.T) {
	c := NewFakeClock(time.Unix(schedTestStart, 0))
	armed := make(chan Timer)
	go func() { armed <- c.NewTimer(time.Second) }()
	ctx, cancel := context.WithTimeout(context.Background(), schedWait)
	defer cancel()
	if err := c.BlockUntilTimers(ctx, 1); err != nil {
		t.Fatalf("BlockUntilTimers: %v", err)
	}
	timer := <-armed
	// Context deadlines are not counted as timers.
	tctx, tcancel := c.WithTimeout(context.Background(), time.Hour)
	defer tcancel()
	short, shortCancel := context.WithCancel(context.Background())
	shortCancel()
	if err := c.BlockUntilTimers(short, 2); err != context.Canceled {
		t.Fatalf("BlockUntilTimers(2) with one channel timer and one deadline = %v, want %v", err, context.Canceled)
	}
	timer.Stop()
	if err := c.BlockUntil(ctx, func(d []time.Time) bool { return len(d) == 0 }); err != nil {
		t.Fatalf("BlockUntil after Stop: %v", err)
	}
	if tctx.Err() != nil {
		t.Fatalf("deadline context done early: %v", tctx.Err())
	}
}

func TestRealClock(t *testing.T) {
	c := RealClock()
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("Now() = %v, before %v", now, before)
	}
	timer := c.NewTimer(time.Millisecond)
	select {
	case at := <-timer.C():
		if at.Before(before.Add(time.Millisecond)) {
			t.Fatalf("fired at %v, before its deadline", at)
		}
	case <-time.After(schedWait):
		t.Fatal("real timer did not fire")
	}
	if timer.Stop() {
		t.Fatal("Stop of a fired timer returned true")
	}
	timer.Reset(time.Hour)
	if !timer.Stop() {
		t.Fatal("Stop of a re-armed timer returned false")
	}
	ctx, cancel := c.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if deadline, ok := ctx.Deadline(); !ok || deadline.Before(before.Add(time.Hour)) {
		t.Fatalf("deadline %v, %v; want an hour from now", deadline, ok)
	}
}

func TestFakeClockStepWall(t *testing.T) {
	start := time.Unix(schedTestStart, 0)
	tests := []struct {
		name  string
		steps []time.Duration
	}{
		{"back", []time.Duration{-time.Hour}},
		{"forward", []time.Duration{time.Hour}},
		{"steps add up", []time.Duration{-time.Hour, -time.Hour, 30 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFakeClock(start)
			timer := c.NewTimer(10 * time.Second)
			ctx, cancel := c.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var step time.Duration
			for _, d := range tt.steps {
				c.StepWall(d)
				step += d
			}
			if got, want := c.Now(), start.Add(step); !got.Equal(want) {
				t.Fatalf("Now() = %v after the step, want %v", got, want)
			}
			// The deadline reported is the wall time the timer will fire at.
			short, shortCancel := context.WithTimeout(context.Background(), schedWait)
			defer shortCancel()
			want := start.Add(10*time.Second + step)
			if err := c.BlockUntil(short, func(d []time.Time) bool { return len(d) == 1 && d[0].Equal(want) }); err != nil {
				t.Fatalf("deadline not reported at %v: %v", want, err)
			}
			// Timers count elapsed time: the step neither fires nor delays them.
			if fired, _ := fakeTimerReceived(timer); fired {
				t.Fatal("the step fired the timer")
			}
			c.Advance(5 * time.Second)
			if ctx.Err() != context.DeadlineExceeded {
				t.Fatalf("context Err() = %v after its 5s elapsed, want %v", ctx.Err(), context.DeadlineExceeded)
			}
			c.Advance(4 * time.Second)
			if fired, _ := fakeTimerReceived(timer); fired {
				t.Fatal("fired after 9s of a 10s timer")
			}
			c.Advance(time.Second)
			if fired, at := fakeTimerReceived(timer); !fired || !at.Equal(want) {
				t.Fatalf("after 10s: fired %v at %v, want true at %v (wall time)", fired, at, want)
			}
		})
	}
}
