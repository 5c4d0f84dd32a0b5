package coretest

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// RowsNaming lists the rows of every table of the SQLite database at path in which a text
// column holds one of values: what an erasure must leave none of.
func RowsNaming(t testing.TB, path string, values ...string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	var found []string
	for _, table := range names {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var s string
				switch v := v.(type) {
				case string:
					s = v
				case []byte:
					s = string(v)
				}
				for _, want := range values {
					if s != "" && strings.Contains(s, want) {
						found = append(found, fmt.Sprintf("%s.%s = %q", table, cols[i], s))
					}
				}
			}
		}
		rows.Close()
	}
	return found
}
