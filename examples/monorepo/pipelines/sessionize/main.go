// Command sessionize groups raw clickstream events (raw-events) into visitor
// sessions (sessions). A session ends when a visitor is idle for longer than
// SESSION_GAP (default 30m).
//
// Locally the datasets are JSON-lines files:
//
//	SESSIONIZE_EVENTS_PATH  raw-events rows
//	SESSIONIZE_OUTPUT_PATH  sessions rows (stdout when unset)
//
// DK_STORE_DSN_LAKE_RAW and DK_STORE_DSN_LAKE_CURATED name the stores in a
// deployment; they are only reported. A missing input means nothing to do.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

type event struct {
	EventID    string    `json:"event_id"`
	UserID     int64     `json:"user_id"`
	EventType  string    `json:"event_type"`
	PageURL    string    `json:"page_url"`
	OccurredAt time.Time `json:"occurred_at"`
}

type session struct {
	SessionID   string    `json:"session_id"`
	UserID      int64     `json:"user_id"`
	LandingPage string    `json:"landing_page"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at"`
	PageViews   int       `json:"page_views"`
}

// readEvents parses JSON lines, skipping blank and malformed lines.
func readEvents(r io.Reader) ([]event, int, error) {
	var events []event
	skipped := 0
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(line) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			skipped++
			continue
		}
		events = append(events, e)
	}
	return events, skipped, scanner.Err()
}

// sessionize splits each known visitor's events at idle gaps longer than gap.
// Anonymous events (user_id 0) cannot be attributed and are left out.
func sessionize(events []event, gap time.Duration) []session {
	known := make([]event, 0, len(events))
	for _, e := range events {
		if e.UserID != 0 && !e.OccurredAt.IsZero() {
			known = append(known, e)
		}
	}
	sort.SliceStable(known, func(i, j int) bool {
		if known[i].UserID != known[j].UserID {
			return known[i].UserID < known[j].UserID
		}
		return known[i].OccurredAt.Before(known[j].OccurredAt)
	})

	var sessions []session
	for _, e := range known {
		n := len(sessions)
		if n == 0 || sessions[n-1].UserID != e.UserID || e.OccurredAt.Sub(sessions[n-1].EndedAt) > gap {
			sessions = append(sessions, session{
				SessionID:   fmt.Sprintf("%d-%d", e.UserID, e.OccurredAt.Unix()),
				UserID:      e.UserID,
				LandingPage: e.PageURL,
				StartedAt:   e.OccurredAt,
				EndedAt:     e.OccurredAt,
			})
			n++
		}
		s := &sessions[n-1]
		s.EndedAt = e.OccurredAt
		if e.EventType == "page_view" {
			s.PageViews++
		}
	}
	return sessions
}

func storeState(name string) string {
	if os.Getenv("DK_STORE_DSN_"+name) == "" {
		return "not set (local run)"
	}
	return "configured"
}

func run() error {
	gap := 30 * time.Minute
	if raw := os.Getenv("SESSION_GAP"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return fmt.Errorf("SESSION_GAP must be a positive duration such as 30m, got %q", raw)
		}
		gap = d
	}
	for _, name := range []string{"LAKE_RAW", "LAKE_CURATED"} {
		fmt.Fprintf(os.Stderr, "sessionize: store DK_STORE_DSN_%s: %s\n", name, storeState(name))
	}

	path := os.Getenv("SESSIONIZE_EVENTS_PATH")
	if path == "" {
		fmt.Fprintln(os.Stderr, "sessionize: SESSIONIZE_EVENTS_PATH not set; nothing to do")
		return nil
	}
	in, err := os.Open(path)
	if os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "sessionize: %s does not exist; nothing to do\n", path)
		return nil
	} else if err != nil {
		return err
	}
	defer in.Close()

	events, skipped, err := readEvents(in)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	sessions := sessionize(events, gap)

	out := os.Stdout
	if outPath := os.Getenv("SESSIONIZE_OUTPUT_PATH"); outPath != "" {
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	enc := json.NewEncoder(out)
	users := map[int64]bool{}
	for _, s := range sessions {
		users[s.UserID] = true
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "sessionize: %d events (%d malformed skipped), %d visitors, %d sessions, gap %s\n",
		len(events), skipped, len(users), len(sessions), gap)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sessionize:", err)
		os.Exit(1)
	}
}
