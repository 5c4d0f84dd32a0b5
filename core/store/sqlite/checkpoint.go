package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// SQLite's WAL holds every committed page until a checkpoint copies it into the database
// file. By default the connection that commits does that itself, every 1,000 pages, inside its
// commit: the request that happens to cross the line waits while up to 4 MB of pages scattered
// over the file are copied and synced. With a million users those pages are all different, and
// that wait made the p99 of refreshes three times their p50 (BENCHMARKS.md, "Growth").
//
// The store checkpoints on a connection of its own instead, a few times a second, with
// PASSIVE checkpoints that never block readers or the writer. The writer keeps a much larger
// automatic checkpoint as a bound on the WAL, should the checkpointer fall behind.
const (
	// checkpointEvery is how often the checkpointer runs.
	checkpointEvery = 250 * time.Millisecond
	// writerCheckpointPages is the writer's own automatic checkpoint (4 KiB pages): reached
	// only when the checkpointer cannot keep up.
	writerCheckpointPages = 16000
)

// checkpointer copies the WAL into the database file in the background until stopped.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if _, _, err := c.checkpoint(context.Background()); err != nil {
				slog.Warn("sqlite: background WAL checkpoint failed; the writer checkpoints itself when the WAL grows", "error", err)
			}
		}
	}
}

// checkpoint runs one PASSIVE checkpoint and returns the WAL's frames and how many of them
// are now in the database file.
func (c *checkpointer) checkpoint(ctx context.Context) (frames, copied int, err error) {
	var busy int
	err = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return frames, copied, err
}

// Close stops the checkpointer and closes its connection; closing again does nothing.
func (c *checkpointer) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
