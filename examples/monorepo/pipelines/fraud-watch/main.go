// Command fraud-watch reads clickstream events as a stream and writes an alert
// (a suspicious-activity row) when one IP address sends more than
// BURST_THRESHOLD events within BURST_WINDOW.
//
// Events arrive as JSON lines on the reader named by FRAUD_WATCH_INPUT: a file
// path, or "-" for standard input (in the cluster a sidecar pipes the
// clickstream topic in). Alerts go to standard output as JSON lines and a
// summary goes to standard error when the input ends. With no input
// configured the job reports its settings and exits.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

type event struct {
	EventID    string    `json:"event_id"`
	UserID     int64     `json:"user_id"`
	IPAddress  string    `json:"ip_address"`
	OccurredAt time.Time `json:"occurred_at"`
}

type alert struct {
	EventID    string    `json:"event_id"`
	UserID     int64     `json:"user_id"`
	IPAddress  string    `json:"ip_address"`
	Rule       string    `json:"rule"`
	RiskScore  float64   `json:"risk_score"`
	DetectedAt time.Time `json:"detected_at"`
}

// burstDetector keeps, per IP address, the event times inside the window.
type burstDetector struct {
	threshold int
	window    time.Duration
	seen      map[string][]time.Time
	lastAlert map[string]time.Time
}

func newBurstDetector(threshold int, window time.Duration) *burstDetector {
	return &burstDetector{
		threshold: threshold,
		window:    window,
		seen:      map[string][]time.Time{},
		lastAlert: map[string]time.Time{},
	}
}

// observe returns an alert at most once per window for each noisy address.
func (d *burstDetector) observe(e event) (alert, bool) {
	if e.IPAddress == "" || e.OccurredAt.IsZero() {
		return alert{}, false
	}
	cutoff := e.OccurredAt.Add(-d.window)
	times := d.seen[e.IPAddress]
	kept := times[:0]
	for _, t := range times {
		if t.After(cutoff) {
			kept = append(kept, t)
		}
	}
	kept = append(kept, e.OccurredAt)
	d.seen[e.IPAddress] = kept

	if len(kept) <= d.threshold {
		return alert{}, false
	}
	if last, ok := d.lastAlert[e.IPAddress]; ok && e.OccurredAt.Sub(last) < d.window {
		return alert{}, false
	}
	d.lastAlert[e.IPAddress] = e.OccurredAt
	score := float64(len(kept)) / float64(2*d.threshold)
	if score > 1 {
		score = 1
	}
	return alert{
		EventID:    e.EventID,
		UserID:     e.UserID,
		IPAddress:  e.IPAddress,
		Rule:       "ip-burst",
		RiskScore:  score,
		DetectedAt: e.OccurredAt,
	}, true
}

func openInput(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(name)
}

func run() error {
	threshold := 120
	if raw := os.Getenv("BURST_THRESHOLD"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return fmt.Errorf("BURST_THRESHOLD must be a positive integer, got %q", raw)
		}
		threshold = n
	}
	window := time.Minute
	if raw := os.Getenv("BURST_WINDOW"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return fmt.Errorf("BURST_WINDOW must be a positive duration such as 1m, got %q", raw)
		}
		window = d
	}
	kafka := "not set (local run)"
	if os.Getenv("DK_STORE_DSN_EVENTS_KAFKA") != "" {
		kafka = "configured"
	}
	fmt.Fprintf(os.Stderr, "fraud-watch: store DK_STORE_DSN_EVENTS_KAFKA: %s; threshold %d events per %s\n",
		kafka, threshold, window)

	name := os.Getenv("FRAUD_WATCH_INPUT")
	if name == "" {
		fmt.Fprintln(os.Stderr, "fraud-watch: FRAUD_WATCH_INPUT not set; nothing to watch")
		return nil
	}
	in, err := openInput(name)
	if os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "fraud-watch: %s does not exist; nothing to watch\n", name)
		return nil
	} else if err != nil {
		return err
	}
	defer in.Close()

	detector := newBurstDetector(threshold, window)
	enc := json.NewEncoder(os.Stdout)
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64*1024), 4*1024*1024)
	events, malformed, alerts := 0, 0, 0
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(line) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			malformed++
			continue
		}
		events++
		if a, ok := detector.observe(e); ok {
			alerts++
			if err := enc.Encode(a); err != nil {
				return err
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	fmt.Fprintf(os.Stderr, "fraud-watch: %d events (%d malformed skipped), %d addresses tracked, %d alerts\n",
		events, malformed, len(detector.seen), alerts)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fraud-watch:", err)
		os.Exit(1)
	}
}
